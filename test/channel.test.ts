import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { closedPort } from "./support/free-port.js";

let backends: EchoBackend[];
let target: string;

beforeAll(async () => {
  backends = await Promise.all([11, 12, 13].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
  target = `static:///${backends.map((b) => b.address).join(",")}`;
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.close()));
});

async function* messages(...texts: string[]) {
  for (const message of texts) yield { message };
}

describe.each([
  ["grpc", "lean"],
  ["grpc", "connect-node"],
  ["connect", undefined],
  ["grpc-web", undefined],
] as const)("over %s (%s)", (protocol, grpcImplementation) => {
  it("balances all four call kinds per call over every endpoint", async () => {
    await using channel = createChannel({
      target,
      protocol,
      balancer: "round-robin",
      ...(grpcImplementation ? { grpcImplementation } : {}),
    });
    const client = createClient(EchoService, channel);
    const servers = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const unary = await client.echo({ message: `u${i}` });
      expect(unary.message).toBe(`u${i}`);
      servers.add(unary.server);
    }
    expect(servers).toEqual(new Set(backends.map((b) => b.address)));

    const streamed: number[] = [];
    for await (const m of client.serverStream({ message: "s", count: 5 })) streamed.push(m.index);
    expect(streamed).toEqual([0, 1, 2, 3, 4]);

    if (protocol !== "grpc-web") {
      const joined = await client.clientStream(messages("a", "b", "c"));
      expect(joined.message).toBe("a,b,c");
      const echoed: string[] = [];
      for await (const m of client.bidi(messages("x", "y"))) echoed.push(m.message);
      expect(echoed).toEqual(["x", "y"]);
    }
    const snapshot = channel.snapshot();
    expect(snapshot.endpoints.map((e) => e.state)).toEqual(["ready", "ready", "ready"]);
    expect(snapshot.endpoints.every((e) => e.inFlight === 0 && e.failures === 0)).toBe(true);
  });
});

describe("createChannel", () => {
  it.each(["p2c", "least-request", "round-robin"] as const)(
    "%s spreads calls over every endpoint",
    async (balancer) => {
      await using channel = createChannel({ target, balancer });
      const client = createClient(EchoService, channel);
      const counts = new Map<string, number>();
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 40; i++) {
            const r = await client.echo({ message: "x", delayMs: 1 });
            counts.set(r.server, (counts.get(r.server) ?? 0) + 1);
          }
        }),
      );
      expect(counts.size).toBe(3);
      for (const n of counts.values()) expect(n).toBeGreaterThan(320 / 3 / 3);
    },
  );

  it("pick-first sends everything to the first endpoint and connects only to it", async () => {
    await using channel = createChannel({ target, balancer: "pick-first" });
    const client = createClient(EchoService, channel);
    for (let i = 0; i < 10; i++) {
      expect((await client.echo({ message: "x" })).server).toBe(backends[0]?.address);
    }
    expect(channel.snapshot().endpoints.map((e) => e.state)).toEqual(["ready", "idle", "idle"]);
  });

  it("pick-first fails over in order when the first endpoint cannot be reached", async () => {
    const down = `127.0.0.19:${await closedPort("127.0.0.19")}`;
    await using channel = createChannel({
      target: `static:///${down},${backends[1]?.address},${backends[2]?.address}`,
      balancer: "pick-first",
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    for (let i = 0; i < 5; i++) {
      expect((await client.echo({ message: "x" })).server).toBe(backends[1]?.address);
    }
    const [first, second, third] = channel.snapshot().endpoints.map((e) => e.state);
    // The first keeps being retried with backoff; the third is never dialled.
    expect(["transient-failure", "connecting"]).toContain(first);
    expect([second, third]).toEqual(["ready", "idle"]);
  });

  it("passes server errors through unchanged and counts them", async () => {
    await using channel = createChannel({ target, balancer: "round-robin" });
    const client = createClient(EchoService, channel);
    const error = await client.echo({ message: "x", failCode: Code.PermissionDenied }).catch((e) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.PermissionDenied);
    expect(channel.snapshot().endpoints.reduce((n, e) => n + e.failures, 0)).toBe(1);
  });

  it("applies Connect options: interceptors, timeouts, JSON", async () => {
    const seen: string[] = [];
    const interceptor: Interceptor = (next) => async (req) => {
      seen.push(req.method.name);
      return next(req);
    };
    await using channel = createChannel({
      target,
      interceptors: [interceptor],
      useBinaryFormat: false,
      defaultTimeoutMs: 200,
    });
    const client = createClient(EchoService, channel);
    expect((await client.echo({ message: "json" })).message).toBe("json");
    expect(seen).toEqual(["Echo"]);
    const slow = await client.echo({ message: "x", delayMs: 2000 }).catch((e) => e);
    expect((slow as ConnectError).code).toBe(Code.DeadlineExceeded);
  });

  it("fails calls after close() with UNAVAILABLE naming the target", async () => {
    const channel = createChannel({ target });
    const client = createClient(EchoService, channel);
    await client.echo({ message: "x" });
    await channel.close();
    const error = (await client.echo({ message: "x" }).catch((e) => e)) as ConnectError;
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toBe(`channel to "${target}" is closed`);
    expect(channel.snapshot().closed).toBe(true);
  });

  it.each([
    [{ target: "static:///" }, "the address list is empty"],
    [{ target: "nope://x/y" }, 'unknown scheme "nope:"'],
    [{ target: "k8s:///orders.shop:grpc" }, "provided by @meshlite/resolver-k8s"],
    [{ target: "127.0.0.1:1", balancer: "fastest" }, 'unknown balancer "fastest"'],
    [{ target: "127.0.0.1:1", protocol: "http3" }, 'unknown protocol "http3"'],
    [{ target: "127.0.0.1:1", grpcImplementation: "fast" }, 'unknown grpcImplementation "fast"'],
    [{ target: "127.0.0.1:1", defaultTimeoutMs: -1 }, "defaultTimeoutMs must be a non-negative number"],
    [{ target: "127.0.0.1:1", tls: { cert: "x" } }, "tls.cert and tls.key go together"],
    [{ target: "127.0.0.1:1", balancr: "p2c" }, 'createChannel: unknown key "balancr" (did you mean "balancer"?)'],
    [
      { target: "127.0.0.1:1", keepalive: { intervalMs: 1000, timeout: 5 } },
      'createChannel: keepalive: unknown key "timeout" (did you mean "timeoutMs"?)',
    ],
    [
      { target: "127.0.0.1:1", retry: { idempotent: { maxAttempt: 2 } } },
      'createChannel: retry.idempotent: unknown key "maxAttempt" (did you mean "maxAttempts"?)',
    ],
    [{ target: "127.0.0.1:1", waitForReady: 5 }, 'unknown key "waitForReady" (did you mean "waitForReadyMs"?)'],
    [
      { target: "127.0.0.1:1", outlierDetection: { consecutive: 2 } },
      'createChannel: outlierDetection: unknown key "consecutive"',
    ],
    [
      { target: "127.0.0.1:1", outlierDetection: { baseEjectionMs: -1 } },
      "createChannel: outlierDetection.baseEjectionMs must be",
    ],
    [
      { target: "127.0.0.1:1", balancer: { name: "old", connect: "first", pick: () => undefined } },
      'createChannel: Balancer.connect is gone; write connections: "first-reachable"',
    ],
  ])("rejects bad options at creation: %j", (options, message) => {
    expect(() => createChannel(options as never)).toThrow(message);
  });
});
