import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import {
  collect,
  envelope,
  host,
  openSession,
  responseOrder,
  squash,
  unenvelope,
} from "./support/client-session-peers.js";
import type { Cleanups } from "./support/loopback-server.js";

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A method whose messages are raw bytes: the test frames them itself. */
function raw(path: string, responseStream: boolean): grpc.MethodDefinition<Buffer, Buffer> {
  const same = (b: Buffer) => b;
  return {
    path,
    requestStream: false,
    responseStream,
    requestSerialize: same,
    requestDeserialize: same,
    responseSerialize: same,
    responseDeserialize: same,
  };
}

async function startGrpcJs(): Promise<number> {
  const server = new grpc.Server();
  server.addService(
    {
      Unary: raw("/test.Raw/Unary", false),
      Fail: raw("/test.Raw/Fail", false),
      Stream: raw("/test.Raw/Stream", true),
    } as grpc.ServiceDefinition,
    {
      Unary: ((call, callback) => {
        const trailer = new grpc.Metadata();
        trailer.set("x-trailer", `got ${call.request.length}`);
        callback(null, Buffer.concat([Buffer.from("echo:"), call.request]), trailer);
      }) as grpc.handleUnaryCall<Buffer, Buffer>,
      Fail: ((_call, callback) => {
        callback({ code: grpc.status.NOT_FOUND, details: "no such thing" });
      }) as grpc.handleUnaryCall<Buffer, Buffer>,
      Stream: ((call) => {
        const count = call.request.readUInt8(0);
        for (let i = 0; i < count; i++) call.write(Buffer.from(`message ${i}`));
        const trailer = new grpc.Metadata();
        trailer.set("x-count", String(count));
        call.end(trailer);
      }) as grpc.handleServerStreamingCall<Buffer, Buffer>,
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  cleanups.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  cleanups.push(() => server.forceShutdown());
  return port;
}

const grpcHeaders = (path: string) => ({
  ":method": "POST",
  ":path": path,
  "content-type": "application/grpc",
  te: "trailers",
});

describe("h2 client session against @grpc/grpc-js", () => {
  it("makes a unary call: response, message, status and trailers", async () => {
    const port = await startGrpcJs();
    const { session, errors } = await openSession(cleanups, port);
    const stream = session.request(grpcHeaders("/test.Raw/Unary"));
    const c = collect(stream);
    stream.end(envelope(Buffer.from("ping")));
    expect(await c.closed).toEqual({ rstCode: 0, notSent: false, connectionLost: false });
    expect(c.violations).toEqual([]);
    expect(squash(c.order)).toEqual(responseOrder(1, true));
    expect(c.headers?.[":status"]).toBe(200);
    expect(c.headers?.["content-type"]).toBe("application/grpc+proto");
    expect(unenvelope(c.body()).map(String)).toEqual(["echo:ping"]);
    expect(c.trailers?.["grpc-status"]).toBe("0");
    expect(c.trailers?.["x-trailer"]).toBe("got 4");
    expect(errors).toEqual([]);
  });

  it("makes a server-streaming call: every message, then the status", async () => {
    const port = await startGrpcJs();
    const { session } = await openSession(cleanups, port);
    const stream = session.request(grpcHeaders("/test.Raw/Stream"));
    const c = collect(stream);
    stream.end(envelope(Buffer.from([5])));
    expect((await c.closed).rstCode).toBe(0);
    expect(unenvelope(c.body()).map(String)).toEqual([0, 1, 2, 3, 4].map((i) => `message ${i}`));
    expect(c.trailers?.["grpc-status"]).toBe("0");
    expect(c.trailers?.["x-count"]).toBe("5");
    expect(c.order.at(-2)).toBe("end");
  });

  it("reads an error status from a trailers-only response", async () => {
    const port = await startGrpcJs();
    const { session } = await openSession(cleanups, port);
    const stream = session.request(grpcHeaders("/test.Raw/Fail"));
    const c = collect(stream);
    stream.end(envelope(Buffer.from("x")));
    expect((await c.closed).rstCode).toBe(0);
    expect(c.order).toEqual(["response", "close"]);
    expect(c.endStream).toBe(true);
    expect(c.headers?.["grpc-status"]).toBe(String(grpc.status.NOT_FOUND));
    expect(c.headers?.["grpc-message"]).toBe("no%20such%20thing"); // percent-encoded on the wire
  });

  it("runs calls one after another and side by side on one connection", async () => {
    const port = await startGrpcJs();
    const { session } = await openSession(cleanups, port);
    for (let round = 0; round < 3; round++) {
      const calls = Array.from({ length: 20 }, (_, i) => {
        const stream = session.request(grpcHeaders("/test.Raw/Unary"));
        const c = collect(stream);
        stream.end(envelope(Buffer.from(`r${round} c${i}`)));
        return c;
      });
      await Promise.all(calls.map((c) => c.closed));
      calls.forEach((c, i) => {
        expect(unenvelope(c.body()).map(String)).toEqual([`echo:r${round} c${i}`]);
      });
    }
  });
});
