// Concurrency limits (circuit breaking) against a real backend on loopback:
// a burst past a limit fails fast with RESOURCE_EXHAUSTED and a message
// naming the limit, nothing is lost or left hanging, and counts return to zero.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { type ChannelEvent, createChannel } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { closedPort } from "./support/free-port.js";
import { waitFor } from "./support/wait-for.js";

let backend: EchoBackend;
beforeAll(async () => {
  backend = await startEchoBackend({ host: "127.0.14.31" });
});
afterAll(() => backend.close());

/** Settles every promise; the codes and messages of the failures, the count of successes. */
async function outcomes(calls: Array<Promise<unknown>>) {
  const results = await Promise.allSettled(calls);
  const failures = results.flatMap((r) => (r.status === "rejected" ? [ConnectError.from(r.reason)] : []));
  return { ok: results.length - failures.length, failures };
}

describe("concurrency limits", () => {
  it("maxInFlightPerEndpoint: a burst past it fails at once with RESOURCE_EXHAUSTED naming the limit; counts return to zero", async () => {
    const events: ChannelEvent[] = [];
    await using channel = createChannel({
      target: `static:///${backend.address}`,
      logger: silentLogger,
      limits: { maxInFlightPerEndpoint: 5 },
      onEvent: (e) => events.push(e),
    });
    const client = createClient(EchoService, channel);
    await client.echo({ message: "warm" });
    const startedAt = performance.now();
    const failedAt: number[] = [];
    const calls = Array.from({ length: 20 }, () =>
      client.echo({ message: "x", delayMs: 300 }).catch((e: unknown) => {
        failedAt.push(performance.now() - startedAt);
        throw e;
      }),
    );
    const { ok, failures } = await outcomes(calls);
    expect(ok).toBe(5);
    expect(failures).toHaveLength(15);
    for (const f of failures) {
      expect(f.code).toBe(Code.ResourceExhausted);
      expect(f.rawMessage).toContain("limits.maxInFlightPerEndpoint");
      expect(f.rawMessage).toContain("5 calls in flight");
    }
    // At once: long before the 300 ms the admitted calls take.
    expect(Math.max(...failedAt)).toBeLessThan(200);
    const snapshot = channel.snapshot();
    expect(snapshot.endpoints[0]?.inFlight).toBe(0);
    expect(snapshot.waiting).toBe(0);
    expect(snapshot.limited.maxInFlightPerEndpoint).toBe(15);
    expect(events).toContainEqual({ type: "limit-reached", limit: "maxInFlightPerEndpoint", max: 5, calls: 1 });
    // Room again: calls go through.
    expect((await client.echo({ message: "after" })).message).toBe("after");
  });

  it('whenFull: "wait" holds calls past the limit until there is room: all succeed, never more than the limit at once', async () => {
    await using channel = createChannel({
      target: `static:///${backend.address}`,
      logger: silentLogger,
      limits: { maxInFlightPerEndpoint: 4, whenFull: "wait" },
    });
    const client = createClient(EchoService, channel);
    await client.echo({ message: "warm" });
    let most = 0;
    const watch = setInterval(() => {
      most = Math.max(most, backend.inFlight());
    }, 5);
    const { ok, failures } = await outcomes(
      Array.from({ length: 16 }, () => client.echo({ message: "x", delayMs: 100 }, { timeoutMs: 10_000 })),
    );
    clearInterval(watch);
    expect(failures.map((f) => f.message)).toEqual([]);
    expect(ok).toBe(16);
    expect(most).toBeLessThanOrEqual(4);
    expect(most).toBeGreaterThan(0);
    const snapshot = channel.snapshot();
    expect(snapshot.waiting).toBe(0);
    expect(snapshot.endpoints[0]?.inFlight).toBe(0);
    expect(snapshot.limited.maxInFlightPerEndpoint).toBe(12);
  });

  it("maxPending: past it a call waiting for an endpoint fails at once; the waiting ones end at their deadline, counts return to zero", async () => {
    const events: ChannelEvent[] = [];
    const host = "127.0.14.32";
    await using channel = createChannel({
      target: `static:///${host}:${await closedPort(host)}`,
      logger: silentLogger,
      limits: { maxPending: 3 },
      onEvent: (e) => events.push(e),
    });
    const client = createClient(EchoService, channel);
    const waiting = Array.from({ length: 3 }, () => client.echo({ message: "x" }, { timeoutMs: 1500 }));
    await waitFor("three calls waiting", () => channel.snapshot().waiting === 3);
    const startedAt = performance.now();
    const { failures: [past] = [] } = await outcomes([client.echo({ message: "x" }, { timeoutMs: 1500 })]);
    expect(performance.now() - startedAt).toBeLessThan(200);
    expect(past?.code).toBe(Code.ResourceExhausted);
    expect(past?.rawMessage).toContain("limits.maxPending 3");
    const { failures } = await outcomes(waiting);
    expect(failures.map((f) => f.code)).toEqual([Code.DeadlineExceeded, Code.DeadlineExceeded, Code.DeadlineExceeded]);
    expect(channel.snapshot().waiting).toBe(0);
    expect(channel.snapshot().limited.maxPending).toBe(1);
    expect(events.filter((e) => e.type === "limit-reached")).toEqual([
      { type: "limit-reached", limit: "maxPending", max: 3, calls: 1 },
    ]);
  });

  it("rejects bad limits at createChannel, saying what is accepted", () => {
    const target = `static:///${backend.address}`;
    expect(() => createChannel({ target, limits: { maxPending: 0 } })).toThrow(
      "createChannel: limits.maxPending must be an integer >= 1, got 0",
    );
    expect(() => createChannel({ target, limits: { whenFull: "queue" as "wait" } })).toThrow(
      'createChannel: limits.whenFull must be "fail" or "wait", got "queue"',
    );
    expect(() => createChannel({ target, limits: { maxInFlight: 3 } as never })).toThrow(
      'createChannel: limits: unknown key "maxInFlight"',
    );
    expect(() => createChannel({ target, slowStart: { windowMs: -1 } })).toThrow(
      "createChannel: slowStart.windowMs must be a number of milliseconds > 0, got -1",
    );
    expect(() => createChannel({ target, overloadPenalty: { decayMs: 0 } })).toThrow(
      "createChannel: overloadPenalty.decayMs must be a number of milliseconds > 0, got 0",
    );
  });
});
