import type { TLSSocket } from "node:tls";
import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { makeCerts, type TestCerts, type TestCertsOptions } from "./support/certs.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";

let certs: TestCerts;
let backends: EchoBackend[];
const seen: Array<{ servername: string | false | null; authority: string | undefined }> = [];

beforeAll(async () => {
  certs = makeCerts("orders.shop.test");
  backends = await Promise.all(
    [51, 52].map((n) =>
      startEchoBackend({
        host: `127.0.0.${n}`,
        tls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: false },
      }),
    ),
  );
  for (const b of backends) {
    b.server.on("stream", (stream, headers) => {
      const socket = stream.session?.socket as TLSSocket;
      seen.push({
        servername: socket.servername,
        authority: headers[":authority"],
      });
    });
  }
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.close()));
});

describe("TLS", () => {
  it("dials each IP while SNI, :authority and certificate checks use the service name", async () => {
    seen.length = 0;
    await using channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      authority: `orders.shop.test:${backends[0]?.port}`,
      tls: { ca: certs.ca },
      balancer: "round-robin",
    });
    const client = createClient(EchoService, channel);
    const servers = new Set<string>();
    for (let i = 0; i < 4; i++) servers.add((await client.echo({ message: "x" })).server);
    expect(servers.size).toBe(2);
    expect(seen.length).toBe(4);
    for (const s of seen) {
      expect(s.servername).toBe("orders.shop.test");
      expect(s.authority).toBe(`orders.shop.test:${backends[0]?.port}`);
    }
  });

  it("presents a client certificate to a server that requires one (mTLS)", async () => {
    const strict = await startEchoBackend({
      host: "127.0.0.53",
      tls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: true },
    });
    try {
      await using channel = createChannel({
        target: `static:///${strict.address}`,
        authority: "orders.shop.test",
        tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey },
      });
      expect((await createClient(EchoService, channel).echo({ message: "x" })).server).toBe(strict.address);
      await using anonymous = createChannel({
        target: `static:///${strict.address}`,
        authority: "orders.shop.test",
        tls: { ca: certs.ca },
        logger: silentLogger,
      });
      const error = (await createClient(EchoService, anonymous)
        .echo({ message: "x" }, { timeoutMs: 1000 })
        .catch((e) => e)) as ConnectError;
      expect(error.code).toBe(Code.DeadlineExceeded);
    } finally {
      await strict.kill();
    }
  });

  it("refuses a server whose certificate does not carry the name", async () => {
    await using channel = createChannel({
      target: `static:///${backends[0]?.address}`,
      authority: "payments.shop.test",
      tls: { ca: certs.ca },
      logger: silentLogger,
    });
    const error = (await createClient(EchoService, channel)
      .echo({ message: "x" }, { timeoutMs: 1000 })
      .catch((e) => e)) as ConnectError;
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(error.rawMessage).toMatch(/payments\.shop\.test/);
    expect(error.rawMessage).toMatch(/altnames|Hostname\/IP does not match/);
  });

  for (const [what, options, reason] of [
    [
      "an expired certificate",
      {
        serverAltNames: ["DNS:orders.shop.test"],
        serverValidity: { notBefore: "20200101000000Z", notAfter: "20200102000000Z" },
      },
      /certificate has expired/,
    ],
    [
      "a self-signed certificate",
      { serverAltNames: ["DNS:orders.shop.test"], selfSignedServer: true },
      /self[- ]signed/,
    ],
  ] as Array<[string, TestCertsOptions, RegExp]>) {
    it(`refuses a server with ${what}, naming the endpoint and the reason`, async () => {
      const bad = makeCerts(options);
      const server = await startEchoBackend({
        host: "127.0.0.54",
        tls: { key: bad.serverKey, cert: bad.serverCert },
      });
      try {
        await using channel = createChannel({
          target: `static:///${server.address}`,
          authority: "orders.shop.test",
          tls: { ca: certs.ca },
          logger: silentLogger,
        });
        const error = (await createClient(EchoService, channel)
          .echo({ message: "x" }, { timeoutMs: 1000 })
          .catch((e) => e)) as ConnectError;
        expect(error.code).toBe(Code.DeadlineExceeded);
        expect(error.rawMessage).toContain(server.address);
        expect(error.rawMessage).toMatch(reason);
        expect(server.totalCalls()).toBe(0);
      } finally {
        await server.kill();
      }
    });
  }

  it("serverName overrides the name used for SNI and verification", async () => {
    seen.length = 0;
    await using channel = createChannel({
      target: `static:///${backends[0]?.address}`,
      tls: { ca: certs.ca, serverName: "orders.shop.test" },
    });
    await createClient(EchoService, channel).echo({ message: "x" });
    expect(seen[0]?.servername).toBe("orders.shop.test");
    expect(seen[0]?.authority).toBe(backends[0]?.address);
  });
});
