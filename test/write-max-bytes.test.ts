import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { Http2SessionManager } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createLeanGrpcTransport } from "@meshlite/transport";
import { type ChannelOptions, createChannel } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestService } from "../gen/grpc/testing/test_pb.js";
import { type ConnectInteropServer, startConnectInteropServer } from "./support/interop-servers.js";

// writeMaxBytes: a request message over the limit fails the call with
// RESOURCE_EXHAUSTED before it is sent (the server never sees it), as
// Connect's transports do, on the lean gRPC transport and on channels.
const limit = 1000;
let server: ConnectInteropServer;
let sessions: Http2SessionManager[] = [];
beforeAll(async () => {
  server = await startConnectInteropServer("127.0.0.55");
});
afterAll(async () => {
  for (const s of sessions) s.abort();
  sessions = [];
  await server.close();
});

const channelProtocols: Record<string, Partial<ChannelOptions>> = {
  "gRPC (lean)": { protocol: "grpc" },
  "gRPC (connect-node)": { protocol: "grpc", grpcImplementation: "connect-node" },
  Connect: { protocol: "connect" },
  "gRPC-web": { protocol: "grpc-web" },
};

const transports: Record<string, () => Transport & { close?(): Promise<void> }> = {
  "lean gRPC transport": () => {
    const sessionManager = new Http2SessionManager(`http://${server.address}`);
    sessions.push(sessionManager);
    return createLeanGrpcTransport({ baseUrl: `http://${server.address}`, sessionManager, writeMaxBytes: limit });
  },
  ...Object.fromEntries(
    Object.entries(channelProtocols).map(([name, options]) => [
      `channel, ${name}`,
      () =>
        createChannel({
          target: `static:///${server.address}`,
          logger: silentLogger,
          writeMaxBytes: limit,
          ...options,
        }),
    ]),
  ),
};

async function failure(call: Promise<unknown>): Promise<ConnectError> {
  const e = await call.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, "expected the call to fail").toBeInstanceOf(ConnectError);
  return e as ConnectError;
}

describe.each(Object.keys(transports))("%s", (name) => {
  let transport: ReturnType<(typeof transports)[string]>;
  beforeAll(() => {
    transport = transports[name]!();
  });
  afterAll(() => transport.close?.());

  it("a unary request over writeMaxBytes fails with RESOURCE_EXHAUSTED and is never sent", async () => {
    const client = createClient(TestService, transport);
    const callsBefore = server.calls.get("UnaryCall") ?? 0;
    const error = await failure(client.unaryCall({ payload: { body: new Uint8Array(limit + 1) } }));
    expect(Code[error.code]).toBe("ResourceExhausted");
    expect(error.rawMessage).toMatch(/writeMaxBytes/);
    // A request under the limit on the same connection reaches the server: only the big one was held back.
    await client.unaryCall({ payload: { body: new Uint8Array(10) } });
    expect((server.calls.get("UnaryCall") ?? 0) - callsBefore).toBe(1);
  });

  it("a stream's request message over writeMaxBytes fails the call and is never sent", async () => {
    const client = createClient(TestService, transport);
    const receivedBefore = server.received();
    async function* requests() {
      yield { payload: { body: new Uint8Array(10) } };
      yield { payload: { body: new Uint8Array(limit + 1) } };
    }
    const error = await failure(client.streamingInputCall(requests()));
    expect(Code[error.code]).toBe("ResourceExhausted");
    expect(server.received() - receivedBefore).toBeLessThanOrEqual(1);
  });
});
