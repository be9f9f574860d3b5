import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy, parseConfig } from "@meshlite/proxy";
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

describe("mTLS to the upstreams", () => {
  // A backend that requires a client certificate signed by the CA; routes from a config
  // file, whose `tls` names PEM files relative to it, as an operator writes them.
  let strict: EchoBackend;
  let dir: string;
  const peers: string[] = [];
  beforeAll(async () => {
    strict = await startEchoBackend({
      host: "127.0.0.56",
      tls: { key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: true },
    });
    strict.server.on("stream", (stream) => {
      const socket = stream.session?.socket as TLSSocket;
      peers.push(String(socket.getPeerCertificate().subject?.CN ?? ""));
    });
    dir = mkdtempSync(join(tmpdir(), "meshlite-mtls-"));
    for (const [file, pem] of [
      ["ca.crt", certs.ca],
      ["proxy-client.crt", certs.clientCert],
      ["proxy-client.key", certs.clientKey],
    ] as const) {
      writeFileSync(join(dir, file), pem);
    }
  });
  afterAll(async () => {
    await strict.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function through(tls: Record<string, string>) {
    const { options } = parseConfig(
      { routes: [{ target: `static:///${strict.address}`, tls: { serverName: "proxy.test", ...tls } }] },
      dir,
    );
    const front = createProxy({ ...options, logger: silentLogger });
    const { port } = await front.listen("127.0.0.57:0");
    const client = createClient(EchoService, createGrpcTransport({ baseUrl: `http://127.0.0.57:${port}` }));
    return { front, client };
  }

  it("presents the route's client certificate to endpoints that require one", async () => {
    const { front, client } = await through({ ca: "ca.crt", cert: "proxy-client.crt", key: "proxy-client.key" });
    try {
      peers.length = 0;
      expect(await client.echo({ message: "m" })).toMatchObject({ message: "m", server: strict.address });
      // The backend saw the proxy's client certificate.
      expect(peers.length).toBe(1);
      expect(peers[0]).not.toBe("");
    } finally {
      await front.close(500);
    }
  });

  it("without a client certificate, no call reaches such an endpoint", async () => {
    const before = strict.totalCalls();
    const { front, client } = await through({ ca: "ca.crt" });
    try {
      const error = ConnectError.from(await client.echo({ message: "m" }, { timeoutMs: 1500 }).catch((e) => e));
      expect(error.message).toMatch(/deadline|unavailable|no ready endpoint/i);
      expect(strict.totalCalls()).toBe(before);
    } finally {
      await front.close(500);
    }
  });

  it("names a route's unreadable PEM file in the error", () => {
    expect(() =>
      parseConfig({ routes: [{ target: "static:///127.0.0.56:1", tls: { ca: "missing.crt" } }] }, dir),
    ).toThrow(/routes\[0\]\.tls\.ca: cannot read missing\.crt/);
    expect(() => parseConfig({ routes: [{ target: "static:///127.0.0.56:1", tls: { cert: 42 } }] }, dir)).toThrow(
      "routes[0].tls.cert: expected a PEM file path, got 42",
    );
  });
});
