import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { waitFor } from "./support/wait-for.js";

let backends: EchoBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

async function start(n: number, first: number) {
  backends = await Promise.all(Array.from({ length: n }, (_, i) => startEchoBackend({ host: `127.0.5.${first + i}` })));
  return backends;
}
const targetOf = (bs: EchoBackend[]) => `static:///${bs.map((b) => b.address).join(",")}`;
const allReady = (channel: { snapshot(): { endpoints: Array<{ state: string }> } }) =>
  waitFor("all ready", () => channel.snapshot().endpoints.every((e) => e.state === "ready"));
const attempts = (bs: EchoBackend[], method: string) => bs.reduce((n, b) => n + (b.calls.get(method) ?? 0), 0);

describe("retries", () => {
  it("idempotent methods retry UNAVAILABLE on another endpoint; other methods do not", async () => {
    const [bad, good] = (await start(2, 1)) as [EchoBackend, EchoBackend];
    bad.setFailCode(Code.Unavailable);
    const retries: string[] = [];
    await using channel = createChannel({
      target: targetOf(backends),
      balancer: "round-robin",
      outlierDetection: false,
      onEvent: (e) => {
        if (e.type === "retry") retries.push(`${e.kind} ${e.address}`);
      },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    await allReady(channel);
    for (let i = 0; i < 10; i++) {
      expect((await client.echoIdempotent({ message: "x" })).server).toBe(good.address);
    }
    expect(retries.length).toBeGreaterThanOrEqual(4);
    expect(new Set(retries)).toEqual(new Set([`policy ${bad.address}`]));
    const plain = await Promise.all(Array.from({ length: 10 }, () => client.echo({ message: "x" }).catch((e) => e)));
    expect(plain.filter((r) => (r as ConnectError).code === Code.Unavailable).length).toBeGreaterThanOrEqual(3);
  });

  it("the retry budget keeps retries from multiplying an outage", async () => {
    await start(3, 3);
    for (const b of backends) b.setFailCode(Code.Unavailable);
    await using unbudgeted = createChannel({
      target: targetOf(backends),
      outlierDetection: false,
      retry: { budget: false, idempotent: { initialBackoffMs: 1 } },
      logger: silentLogger,
    });
    await allReady(unbudgeted);
    const calls = 30;
    for (let i = 0; i < calls; i++)
      await createClient(EchoService, unbudgeted)
        .echoIdempotent({})
        .catch(() => {});
    expect(attempts(backends, "EchoIdempotent")).toBe(calls * 3);

    for (const b of backends) b.calls.clear();
    await using budgeted = createChannel({
      target: targetOf(backends),
      outlierDetection: false,
      retry: { budget: { maxTokens: 10, tokenRatio: 0.1 }, idempotent: { initialBackoffMs: 1 } },
      logger: silentLogger,
    });
    await allReady(budgeted);
    for (let i = 0; i < calls; i++)
      await createClient(EchoService, budgeted)
        .echoIdempotent({})
        .catch(() => {});
    // Failures drain the bucket to half (5 tokens) within a few calls; then no call is retried.
    expect(attempts(backends, "EchoIdempotent")).toBeLessThanOrEqual(calls + 5);
  });

  it("honours grpc-retry-pushback-ms: waits that long, or does not retry when negative", async () => {
    await start(1, 6);
    await using channel = createChannel({ target: targetOf(backends), outlierDetection: false, logger: silentLogger });
    const client = createClient(EchoService, channel);
    await allReady(channel);
    const started = performance.now();
    await client.echoIdempotent({ message: "pushback:400" }).catch(() => {});
    // Three attempts, two pushbacks of 400 ms.
    expect(backends[0]?.calls.get("EchoIdempotent")).toBe(3);
    expect(performance.now() - started).toBeGreaterThanOrEqual(790);
    await client.echoIdempotent({ message: "pushback:-1" }).catch(() => {});
    expect(backends[0]?.calls.get("EchoIdempotent")).toBe(4);
  });

  it("gives each attempt the time left to the call's deadline", async () => {
    const [slowBad] = (await start(2, 7)) as [EchoBackend, EchoBackend];
    slowBad.setFailCode(Code.Unavailable);
    await using channel = createChannel({
      target: targetOf(backends),
      balancer: "pick-first",
      outlierDetection: false,
      retry: { idempotent: { initialBackoffMs: 300, jitter: 0 } },
      logger: silentLogger,
    });
    await createClient(EchoService, channel)
      .echoIdempotent({ message: "x" }, { timeoutMs: 5000 })
      .catch(() => {});
    const seen = backends.flatMap((b) => b.timeouts).filter((t): t is number => t !== undefined);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen[0]).toBeLessThanOrEqual(5000);
    expect(seen[1]).toBeLessThanOrEqual(5000 - 300);
  });

  it("retries a stream that failed before its first response message, replaying the request", async () => {
    const [bad, good] = (await start(2, 9)) as [EchoBackend, EchoBackend];
    bad.setFailCode(Code.Unavailable);
    await using channel = createChannel({
      target: targetOf(backends),
      balancer: "round-robin",
      outlierDetection: false,
      retry: { methods: { "meshlite.echo.v1.EchoService/ClientStream": {} } },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    await allReady(channel);
    async function* messages() {
      yield { message: "a" };
      yield { message: "b" };
    }
    for (let i = 0; i < 4; i++) {
      const r = await client.clientStream(messages());
      expect(r).toMatchObject({ message: "a,b", server: good.address });
    }
    expect(bad.calls.get("ClientStream")).toBeGreaterThan(0);
  });

  it("a retried stream that the caller stops reading early still ends on its endpoint", async () => {
    await start(2, 13);
    await using channel = createChannel({
      target: targetOf(backends),
      retry: { methods: { "meshlite.echo.v1.EchoService/ServerStream": {} } },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    await allReady(channel);
    for await (const _ of client.serverStream({ message: "s", count: 5 })) break;
    await waitFor("no call in flight", () =>
      channel.snapshot().endpoints.every((e) => e.inFlight === 0 && e.pending === 0),
    );
  });

  it("hedging answers from the fast endpoint when the first copy is slow", async () => {
    const [slow, fast] = (await start(2, 11)) as [EchoBackend, EchoBackend];
    slow.setDelay(2000);
    const hedgedFrom: string[] = [];
    await using channel = createChannel({
      target: targetOf(backends),
      balancer: "round-robin",
      retry: { hedging: { delayMs: 50, maxAttempts: 2 } },
      onEvent: (e) => {
        if (e.type === "retry") hedgedFrom.push(e.address);
      },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    await allReady(channel);
    for (let i = 0; i < 6; i++) {
      const started = performance.now();
      expect((await client.echoIdempotent({ message: "x" })).server).toBe(fast.address);
      expect(performance.now() - started).toBeLessThan(1000);
    }
    // Every copy was sent because the slow endpoint kept the first one waiting.
    expect(new Set(hedgedFrom)).toEqual(new Set([slow.address]));
    // The slow copies were canceled, not left running.
    await waitFor("slow copies canceled", () => slow.inFlight() === 0, { timeoutMs: 3000 });
  });

  it("rejects a policy outside the accepted ranges", () => {
    expect(() => createChannel({ target: "static:///127.0.0.1:1", retry: { idempotent: { maxAttempts: 6 } } })).toThrow(
      "retry maxAttempts must be an integer from 1 to 5, got 6",
    );
    expect(() => createChannel({ target: "static:///127.0.0.1:1", retry: { hedging: { delayMs: -1 } } })).toThrow(
      "retry.hedging.delayMs",
    );
  });
});
