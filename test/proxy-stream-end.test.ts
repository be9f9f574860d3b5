import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { createChannel } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StreamingOutputCallRequestSchema } from "../gen/grpc/testing/messages_pb.js";
import { TestService } from "../gen/grpc/testing/test_pb.js";
import { type InteropServer, startGrpcJsInteropServer } from "./support/interop-servers.js";
import { waitFor } from "./support/wait-for.js";

// A call whose response ends while the client still sends its request (the
// server failed it after the first message) is over: the proxy forwards the
// trailers, tells the client to stop sending (RST_STREAM NO_ERROR after the
// trailers, as gRPC servers may) and lets the call go at once, not when the
// client stops. The upstream is @grpc/grpc-js, which leaves such a stream
// half-open for the client to end.
let server: InteropServer;
let proxy: MeshliteProxy;
let proxyUrl: string;
beforeAll(async () => {
  server = await startGrpcJsInteropServer("127.0.0.59");
  proxy = createProxy({ logger: silentLogger, routes: [{ name: "interop", target: `static:///${server.address}` }] });
  const bound = await proxy.listen("127.0.0.60:0");
  proxyUrl = `http://127.0.0.60:${bound.port}`;
  await waitFor("the proxy's endpoint to be ready", () =>
    proxy.ready().routes[0]?.readyEndpoints === 1 ? true : undefined,
  );
});
afterAll(async () => {
  await proxy.close(1000);
  await server.close();
});

const failing = { responseStatus: { code: Code.InvalidArgument, message: "fail after the first message" } };

function envelope(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.byteLength);
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, 5);
  return frame;
}

/** Fails with `what` if the promise does not settle within 10 s. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after 10000 ms waiting for ${what}`)), 10_000);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("a stream whose response ends before its request, through meshlite-proxy", () => {
  for (const [name, failNext, code] of [
    ["the server's trailers", 0, Code.InvalidArgument],
    ["a trailers-only response", 1, Code.Unavailable],
  ] as const) {
    it(`gets ${name}, then the proxy ends the stream and the call while the client still sends`, async () => {
      server.failNext(failNext);
      const session = http2.connect(proxyUrl);
      try {
        const stream = session.request({
          ":method": "POST",
          ":path": "/grpc.testing.TestService/FullDuplexCall",
          "content-type": "application/grpc",
          te: "trailers",
        });
        const status = new Promise<unknown>((resolve) => {
          stream.once("response", (h) => h["grpc-status"] !== undefined && resolve(h["grpc-status"]));
          stream.once("trailers", (t) => resolve(t["grpc-status"]));
        });
        const closed = new Promise<number | undefined>((resolve) =>
          stream.once("close", () => resolve(stream.rstCode)),
        );
        stream.on("data", () => {});
        stream.on("error", () => {});
        // The first message makes the server fail the call; the request stays open.
        const message = create(StreamingOutputCallRequestSchema, failing);
        stream.write(envelope(toBinary(StreamingOutputCallRequestSchema, message)));
        expect(await within(status, "the call's status")).toBe(String(code));
        expect(await within(closed, "the proxy to end the stream")).toBe(http2.constants.NGHTTP2_NO_ERROR);
        await waitFor("the proxy to let the call go", () => proxy.inFlight() === 0, { timeoutMs: 10_000 });
      } finally {
        session.destroy();
      }
    });
  }

  for (const [name, transport] of [
    ["connect-node gRPC transport", () => createGrpcTransport({ baseUrl: proxyUrl })],
    ["channel", () => createChannel({ target: `static:///${proxyUrl.slice(7)}`, logger: silentLogger })],
  ] as const) {
    it(`${name}: the call fails with the server's status and the request generator is ended`, async () => {
      let finalized = false;
      async function* requests() {
        try {
          yield failing;
          for (let i = 0; i < 10_000; i++) yield { responseParameters: [{ size: 1 }] };
        } finally {
          finalized = true;
        }
      }
      const t = transport();
      const error = await (async () => {
        for await (const _ of createClient(TestService, t).fullDuplexCall(requests()));
      })().catch((e: unknown) => ConnectError.from(e));
      expect(Code[(error as ConnectError).code]).toBe("InvalidArgument");
      await waitFor("the request generator's finally to run", () => finalized, { timeoutMs: 10_000 });
      await waitFor("the proxy to let the call go", () => proxy.inFlight() === 0, { timeoutMs: 10_000 });
      await (t as { close?(): Promise<void> }).close?.();
    });
  }
});
