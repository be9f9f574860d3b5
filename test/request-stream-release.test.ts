import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { type Channel, type ChannelOptions, createChannel } from "meshlite";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TestService } from "../gen/grpc/testing/test_pb.js";
import { type ConnectInteropServer, startConnectInteropServer } from "./support/interop-servers.js";
import { waitFor } from "./support/wait-for.js";

// A caller's request stream is a generator that may hold a resource it
// releases in `finally` (a file, a cursor, a subscription). When the call
// ends early, the channel must end the generator, for every protocol and
// with or without retries; a retried call must not end it while the last
// attempt still reads it. One connect-node TestService server (it speaks all
// three protocols).
let server: ConnectInteropServer;
beforeAll(async () => {
  server = await startConnectInteropServer("127.0.0.51");
});
afterAll(() => server.close());

const protocols: Record<string, Partial<ChannelOptions>> = {
  "gRPC (lean)": { protocol: "grpc" },
  "gRPC (connect-node)": { protocol: "grpc", grpcImplementation: "connect-node" },
  Connect: { protocol: "connect" },
  "gRPC-web": { protocol: "grpc-web" },
};
const retryPolicies: Record<string, ChannelOptions["retry"]> = {
  "no retries": { idempotent: false },
  retries: { budget: false, methods: { "grpc.testing.TestService": { initialBackoffMs: 1, jitter: 0 } } },
};

/**
 * A request stream of up to `count` messages that records what was pulled
 * and whether its `finally` ran. With a gate, it stops after the first
 * message until the gate opens: a generator is only ended at a `yield`, so
 * the call's outcome is known before the rest of the stream would be read.
 */
function requestStream<T>(count: number, make: (i: number) => T, gate?: Promise<unknown>) {
  const state = { pulled: 0, finalized: false };
  async function* generate() {
    try {
      for (let i = 0; i < count; i++) {
        state.pulled++;
        yield make(i);
        if (i === 0 && gate) await gate;
      }
    } finally {
      state.finalized = true;
    }
  }
  return { state, messages: generate() };
}

const duplexRequest = () => ({ responseParameters: [{ size: 1 }] });

/** A promise and the function that resolves it. */
function createGate() {
  let open = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { gate, open };
}

async function readAll(messages: AsyncIterable<unknown>): Promise<{ count: number; error?: ConnectError }> {
  let count = 0;
  try {
    for await (const _ of messages) count++;
    return { count };
  } catch (e) {
    return { count, error: ConnectError.from(e) };
  }
}

describe.each(Object.keys(protocols))("%s", (protocol) => {
  describe.each(Object.keys(retryPolicies))("%s", (retries) => {
    let channel: Channel;
    beforeAll(() => {
      channel = createChannel({
        target: `static:///${server.address}`,
        logger: silentLogger,
        ...protocols[protocol],
        retry: retryPolicies[retries],
      });
    });
    afterAll(() => channel.close());
    const withRetries = retries === "retries";
    beforeEach(() => server.failNext(0));

    it("ends the request generator when the server fails the call after its first message", async () => {
      // With retries, the first attempt fails before any response (UNAVAILABLE, retried) and the retry fails for good.
      if (withRetries) server.failNext(1);
      const { gate, open } = createGate();
      const failing = { code: Code.InvalidArgument, message: "fail after the first message" };
      const { state, messages } = requestStream(
        10_000,
        (i) => ({ responseParameters: [{ size: 1 }], ...(i === 0 ? { responseStatus: failing } : {}) }),
        gate,
      );
      const result = await readAll(createClient(TestService, channel).fullDuplexCall(messages));
      open();
      expect(result.error?.code).toBe(Code.InvalidArgument);
      await waitFor("the request generator's finally to run", () => state.finalized, { timeoutMs: 10_000 });
      expect(state.pulled).toBeLessThan(10_000);
    });

    it("ends the request generator when the server fails a client stream at once", async () => {
      server.failNext(withRetries ? 3 : 1); // every attempt fails
      const { gate, open } = createGate();
      const { state, messages } = requestStream(10_000, () => ({ payload: { body: new Uint8Array(8) } }), gate);
      const error = await createClient(TestService, channel)
        .streamingInputCall(messages)
        .catch((e: unknown) => ConnectError.from(e));
      open();
      expect((error as ConnectError).code).toBe(Code.Unavailable);
      if (state.pulled > 0) {
        await waitFor("the request generator's finally to run", () => state.finalized, { timeoutMs: 10_000 });
      }
    });

    it("ends the request generator when the caller stops reading the responses", async () => {
      const { state, messages } = requestStream(10_000, duplexRequest);
      for await (const _ of createClient(TestService, channel).fullDuplexCall(messages)) break;
      await waitFor("the request generator's finally to run", () => state.finalized, { timeoutMs: 10_000 });
    });

    it("keeps the request generator for the attempt that completes the call", async () => {
      if (withRetries) server.failNext(1);
      const { state, messages } = requestStream(5, duplexRequest);
      const result = await readAll(createClient(TestService, channel).fullDuplexCall(messages));
      expect({ result, state }).toEqual({ result: { count: 5 }, state: { pulled: 5, finalized: true } });
    });
  });
});
