import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { makeCerts, type TestCerts } from "./support/certs.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { waitFor } from "./support/wait-for.js";

// TLS on both sides: clients reach the proxy over TLS with a client
// certificate (ALPN h2 or http/1.1), the proxy reaches a TLS backend.
let certs: TestCerts;
let backend: EchoBackend;
let proxy: MeshliteProxy;
let baseUrl: string;

beforeAll(async () => {
  certs = makeCerts("proxy.test");
  backend = await startEchoBackend({
    host: "127.0.0.51",
    tls: { key: certs.serverKey, cert: certs.serverCert },
  });
  proxy = createProxy({
    logger: silentLogger,
    tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca },
    routes: [{ target: `static:///${backend.address}`, tls: { ca: certs.ca, serverName: "proxy.test" } }],
  });
  const { port } = await proxy.listen("127.0.0.50:0");
  baseUrl = `https://127.0.0.50:${port}`;
  await waitFor("the TLS backend to be ready", () => proxy.ready().ready);
});
afterAll(async () => {
  await proxy.close(500);
  await backend.close();
});

// The certificate names proxy.test; the tests dial its IP address.
const trust = () => ({
  ca: certs.ca,
  checkServerIdentity: () => undefined,
});

describe("TLS listener", () => {
  it("forwards gRPC over TLS (ALPN h2) from a client with a certificate", async () => {
    const client = createClient(
      EchoService,
      createGrpcTransport({ baseUrl, nodeOptions: { ...trust(), cert: certs.clientCert, key: certs.clientKey } }),
    );
    const r = await client.echo({ message: "tls" });
    expect(r).toMatchObject({ message: "tls", server: backend.address });
    const indexes: number[] = [];
    for await (const m of client.serverStream({ message: "s", count: 3 })) indexes.push(m.index);
    expect(indexes).toEqual([0, 1, 2]);
  });

  it("forwards Connect over TLS with HTTP/1.1 (ALPN http/1.1)", async () => {
    const client = createClient(
      EchoService,
      createConnectTransport({
        baseUrl,
        httpVersion: "1.1",
        nodeOptions: { ...trust(), cert: certs.clientCert, key: certs.clientKey },
      }),
    );
    expect((await client.echo({ message: "h1" })).message).toBe("h1");
  });

  it("refuses a client without a certificate", async () => {
    const client = createClient(EchoService, createGrpcTransport({ baseUrl, nodeOptions: trust() }));
    const error = ConnectError.from(await client.echo({ message: "anon" }).catch((e) => e));
    // The TLS handshake fails: the proxy asks for a certificate the client lacks.
    expect(error.message).toMatch(/certificate/i);
    // The proxy stays up for clients that present one.
    const ok = createClient(
      EchoService,
      createGrpcTransport({ baseUrl, nodeOptions: { ...trust(), cert: certs.clientCert, key: certs.clientKey } }),
    );
    expect((await ok.echo({ message: "again" })).message).toBe("again");
  });
});
