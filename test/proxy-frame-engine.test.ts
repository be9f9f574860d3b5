import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";

// The frame engine chosen in the options (not through MESHLITE_PROXY_ENGINE):
// the default suite runs every proxy test on the default engine (frames) and
// pnpm test:proxy-streams on the streams engine; this file holds the frame
// engine even when MESHLITE_PROXY_ENGINE says otherwise.
let backend: EchoBackend;
let proxy: MeshliteProxy;
let baseUrl: string;
const sessions: Http2SessionManager[] = [];

beforeAll(async () => {
  backend = await startEchoBackend({ host: "127.0.0.61" });
  proxy = createProxy({ engine: "frames", logger: silentLogger, routes: [{ target: `static:///${backend.address}` }] });
  const bound = await proxy.listen("127.0.0.61:0");
  baseUrl = `http://127.0.0.61:${bound.port}`;
});
afterAll(async () => {
  for (const s of sessions) s.abort();
  await proxy.close(1000);
  await backend.close();
});

function grpcClient() {
  const sessionManager = new Http2SessionManager(baseUrl);
  sessions.push(sessionManager);
  return createClient(EchoService, createGrpcTransport({ baseUrl, sessionManager }));
}

describe('proxy on engine: "frames"', () => {
  it("forwards gRPC unary, server-, client- and bidi-streaming calls", async () => {
    const client = grpcClient();
    const unary = await Promise.all(Array.from({ length: 50 }, (_, i) => client.echo({ message: `m${i}` })));
    expect(unary.map((r) => r.message)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
    const streamed: string[] = [];
    for await (const r of client.serverStream({ message: "s", count: 100 })) streamed.push(r.message);
    expect(streamed.length).toBe(100);
    async function* parts() {
      for (let i = 0; i < 20; i++) yield { message: "p" };
    }
    const summed = await client.clientStream(parts());
    expect(summed.message.length).toBeGreaterThan(0);
    const bidi: string[] = [];
    for await (const r of client.bidi(parts())) bidi.push(r.message);
    expect(bidi.length).toBe(20);
    expect(proxy.inFlight()).toBe(0);
  });

  it("serves gRPC-web over HTTP/1.1 beside it", async () => {
    const client = createClient(EchoService, createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }));
    expect((await client.echo({ message: "web" })).message).toBe("web");
  });
});
