// The lean transport on meshlite's own per-endpoint connection (the seam the channel uses).
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createEndpointTransport,
  createHttp2Connection,
  createLeanGrpcTransport,
  isCallNotSent,
} from "@meshlite/transport";
import { createFrameEngineConnection } from "@meshlite/transport/connection";
import { afterEach, describe, expect, it } from "vitest";
import { EchoResponseSchema, EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";

describe("lean transport over createHttp2Connection", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function setup(): Promise<{
    backend: EchoBackend;
    client: ReturnType<typeof createClient<typeof EchoService>>;
  }> {
    const backend = await startEchoBackend({ host: "127.0.0.3" });
    cleanup.push(() => backend.close());
    // Addressed to a service name, dialled to the backend's address.
    const connection = createHttp2Connection({
      origin: `http://echo.test:${backend.port}`,
      address: { host: backend.host, port: backend.port },
    });
    connection.connect();
    cleanup.push(() => connection.close({ destroy: true }));
    const transport = createLeanGrpcTransport({ baseUrl: connection.authority, sessionManager: connection });
    return { backend, client: createClient(EchoService, transport) };
  }

  it("runs unary and streaming calls", async () => {
    const { backend, client } = await setup();
    expect((await client.echo({ message: "a" })).server).toBe(backend.name);
    const got: number[] = [];
    for await (const r of client.serverStream({ message: "s", count: 3 })) got.push(r.index);
    expect(got).toEqual([0, 1, 2]);
    const err = await client.echo({ failCode: Code.NotFound }).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.NotFound);
  });

  it("keeps the connection's 'not sent' mark on the error", async () => {
    const { client } = await setup();
    const connection = createHttp2Connection({ origin: "http://echo.test:1", address: { host: "127.0.0.3", port: 1 } });
    const transport = createLeanGrpcTransport({ baseUrl: connection.authority, sessionManager: connection });
    const err = await createClient(EchoService, transport)
      .echo({})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect(isCallNotSent(err)).toBe(true);
    await connection.close({ destroy: true });
    expect((await client.echo({ message: "still fine" })).message).toBe("still fine");
  });

  it("rejects a baseUrl whose origin is not the connection's", async () => {
    const connection = createHttp2Connection({ origin: "http://a.test:80", address: { host: "127.0.0.3", port: 1 } });
    expect(() => createLeanGrpcTransport({ baseUrl: "http://b.test:80", sessionManager: connection })).toThrow(
      /origin http:\/\/b.test.*connected to http:\/\/a.test/,
    );
    expect(() => createLeanGrpcTransport({ baseUrl: "not a url" })).toThrow(/is not a URL/);
    await connection.close({ destroy: true });
  });

  it("rejects a frame engine connection of another origin, both kinds of connection at once, and Connect's protocol on it", async () => {
    const address = { host: "127.0.0.3", port: 1 };
    const frames = createFrameEngineConnection({ origin: "http://a.test:80", address });
    const node = createHttp2Connection({ origin: "http://a.test:80", address });
    expect(() => createLeanGrpcTransport({ baseUrl: "http://b.test:80", connection: frames })).toThrow(
      /origin http:\/\/b.test.*the connection is connected to http:\/\/a.test/,
    );
    expect(() =>
      createLeanGrpcTransport({ baseUrl: "http://a.test:80", connection: frames, sessionManager: node }),
    ).toThrow(/give connection or sessionManager, not both/);
    expect(() => createEndpointTransport({ connection: frames, protocol: "connect" })).toThrow(
      /protocol "connect" .* needs a node:http2 connection \(createHttp2Connection\)/,
    );
    // The lean gRPC transport takes either kind.
    expect(createEndpointTransport({ connection: frames })).toBeDefined();
    expect(createEndpointTransport({ connection: node })).toBeDefined();
    await frames.close({ destroy: true });
    await node.close({ destroy: true });
  });

  it("sends each call's header block: the shared one, or the call's own with its metadata and deadline", async () => {
    // A raw HTTP/2 server that records the request headers of every call.
    const seen: http2.IncomingHttpHeaders[] = [];
    const body = toBinary(EchoResponseSchema, create(EchoResponseSchema, { message: "raw" }));
    const frame = Buffer.alloc(5 + body.byteLength);
    frame.writeUInt32BE(body.byteLength, 1);
    frame.set(body, 5);
    const server = http2.createServer();
    server.on("stream", (stream, headers) => {
      seen.push(headers);
      stream.on("data", () => {});
      stream.on("end", () => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(frame);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.3", resolve));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    // Never connected: the first call finds no ready connection and connects it.
    const connection = createHttp2Connection({
      origin: `http://echo.test:${port}`,
      address: { host: "127.0.0.3", port },
    });
    cleanup.push(() => connection.close({ destroy: true }));
    const client = createClient(
      EchoService,
      createLeanGrpcTransport({ baseUrl: connection.authority, sessionManager: connection }),
    );
    expect((await client.echo({})).message).toBe("raw");
    expect(connection.state()).toBe("ready");
    await client.echo({});
    await client.echo({}, { headers: { "x-tenant": "blue" }, timeoutMs: 5000 });
    for await (const r of client.serverStream({}, { headers: { "x-tenant": "green" } })) expect(r.message).toBe("raw");
    expect(seen.map((h) => [h[":method"], h[":path"], h[":authority"], h["content-type"], h["x-tenant"]])).toEqual([
      ["POST", "/meshlite.echo.v1.EchoService/Echo", `echo.test:${port}`, "application/grpc+proto", undefined],
      ["POST", "/meshlite.echo.v1.EchoService/Echo", `echo.test:${port}`, "application/grpc+proto", undefined],
      ["POST", "/meshlite.echo.v1.EchoService/Echo", `echo.test:${port}`, "application/grpc+proto", "blue"],
      ["POST", "/meshlite.echo.v1.EchoService/ServerStream", `echo.test:${port}`, "application/grpc+proto", "green"],
    ]);
    expect(seen[2]?.["grpc-timeout"]).toMatch(/^\d{1,8}[mu]$/);
    expect(seen[1]?.["grpc-timeout"]).toBeUndefined();
  });
});
