import { createRoundRobinBalancer } from "@meshlite/balancers";
import type { Balancer, Endpoint, PickCall } from "@meshlite/core";
import { silentLogger } from "@meshlite/core";
import { describe, expect, it } from "vitest";
import { waitFor } from "../../../test/support/wait-for.js";
import {
  type CallLimitsOptions,
  createEndpointPool,
  type EndpointPool,
  type HealthWatcher,
  NoEndpointError,
  type OutlierDetectionOptions,
  type PoolEvent,
  resolveCallLimits,
  resolveOutlierDetection,
  type Subchannel,
} from "../src/index.js";
import { createFakeConnection, createFakeResolver, type FakeConnection } from "./support/fake-connection.js";

const endpoints = (n: number): Endpoint[] =>
  Array.from({ length: n }, (_, i) => ({ host: `10.0.0.${i + 1}`, port: 50051, hashKey: `pod-${i + 1}` }));

const first: Balancer = { name: "first", pick: (candidates) => candidates[0] };

function setup(
  options: {
    endpoints?: Endpoint[];
    balancer?: Balancer;
    outlierDetection?: OutlierDetectionOptions | false;
    healthWatcher?: HealthWatcher;
    waitForReadyMs?: number;
    limits?: CallLimitsOptions;
  } = {},
) {
  const connections = new Map<string, FakeConnection>();
  const events: PoolEvent[] = [];
  const resolver = createFakeResolver(options.endpoints ?? endpoints(3));
  const pool = createEndpointPool({
    target: { scheme: "static", form: "static", raw: "static:///test", authority: "test", addresses: [] },
    resolver,
    balancer: options.balancer ?? first,
    logger: silentLogger,
    outlierDetection: resolveOutlierDetection(
      options.outlierDetection ?? { consecutiveFailures: 2, baseEjectionMs: 60_000, failureRate: false },
      "test",
    ),
    ...(options.healthWatcher ? { healthWatcher: options.healthWatcher } : {}),
    ...(options.waitForReadyMs !== undefined ? { waitForReadyMs: options.waitForReadyMs } : {}),
    ...(options.limits ? { limits: resolveCallLimits(options.limits, "test") } : {}),
    onEvent: (e) => events.push(e),
    createConnection(endpoint) {
      const c = createFakeConnection(endpoint);
      connections.set(c.address, c);
      return c;
    },
  });
  const conn = (n: number) => connections.get(`10.0.0.${n}:50051`) as FakeConnection;
  const readyAll = () => {
    for (const c of connections.values()) c.set("ready");
  };
  return { pool, resolver, events, conn, readyAll, connections };
}

const keys = (pool: EndpointPool) => pool.candidates().map((sc) => sc.key);

/** One call on `sc` that fails for the endpoint's sake (UNAVAILABLE). */
function fail(sc: Subchannel) {
  sc.end(sc.begin(), { ok: false, failure: true, pending: true, sample: true });
}

describe("endpoint pool", () => {
  it("offers only endpoints whose connection is ready, and recomputes on change, not per pick", () => {
    const { pool, conn } = setup();
    expect(keys(pool)).toEqual([]);
    conn(2).set("ready");
    expect(keys(pool)).toEqual(["10.0.0.2:50051"]);
    const list = pool.candidates();
    pool.tryPick();
    expect(pool.candidates()).toBe(list);
    conn(1).set("ready");
    expect(keys(pool)).toEqual(["10.0.0.1:50051", "10.0.0.2:50051"]);
    conn(2).set("transient-failure", new Error("ECONNREFUSED"));
    expect(keys(pool)).toEqual(["10.0.0.1:50051"]);
  });

  it("drains an endpoint that leaves the set: no new calls, closed once its calls finish", () => {
    const { pool, resolver, conn, readyAll, events } = setup();
    readyAll();
    const leaving = pool.subchannels().find((sc) => sc.key === "10.0.0.1:50051") as Subchannel;
    const startedAt = leaving.begin();
    resolver.set(endpoints(3).slice(1));
    expect(keys(pool)).toEqual(["10.0.0.2:50051", "10.0.0.3:50051"]);
    expect(leaving.draining).toBe(true);
    expect(pool.snapshot().endpoints.find((e) => e.address === leaving.key)).toMatchObject({
      draining: true,
      candidate: false,
      inFlight: 1,
    });
    expect(conn(1).closed).toBe(false);
    leaving.end(startedAt, { ok: true, failure: false, pending: true, sample: true });
    expect(conn(1).closed).toBe(true);
    expect(pool.subchannels().map((sc) => sc.key)).not.toContain(leaving.key);
    expect(events).toContainEqual({ type: "endpoint-removed", address: leaving.key });
  });

  it("ejects an endpoint after consecutive failures and takes it back when the ejection ends", async () => {
    const { pool, readyAll, events } = setup({
      outlierDetection: { consecutiveFailures: 2, baseEjectionMs: 150, failureRate: false },
    });
    readyAll();
    const bad = pool.candidates()[0] as Subchannel;
    fail(bad);
    expect(keys(pool)).toContain(bad.key);
    fail(bad);
    expect(keys(pool)).not.toContain(bad.key);
    expect(pool.snapshot().endpoints.find((e) => e.address === bad.key)).toMatchObject({
      ejected: true,
      ejections: 1,
      candidate: false,
    });
    expect(events).toContainEqual({
      type: "endpoint-ejected",
      address: bad.key,
      reason: "consecutive-failures",
      durationMs: 150,
    });
    await waitFor("the ejected endpoint to return", () => keys(pool).includes(bad.key));
    expect(events).toContainEqual({ type: "endpoint-returned", address: bad.key });
    expect(pool.snapshot().endpoints.find((e) => e.address === bad.key)?.ejected).toBe(false);
  });

  it("never ejects more than maxEjectionPercent of the endpoints", () => {
    const { pool, readyAll } = setup({ outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 34 } });
    readyAll();
    const [a, b] = pool.candidates() as readonly Subchannel[];
    fail(a as Subchannel);
    fail(b as Subchannel);
    expect(keys(pool)).toEqual(["10.0.0.2:50051", "10.0.0.3:50051"]);
  });

  it("enters panic mode when ejection leaves fewer than panicThresholdPercent: every ready endpoint takes calls", () => {
    const { pool, readyAll } = setup({
      outlierDetection: { consecutiveFailures: 1, maxEjectionPercent: 100, panicThresholdPercent: 50 },
    });
    readyAll();
    const [a, b] = pool.candidates() as readonly Subchannel[];
    fail(a as Subchannel);
    // 2 of 3 left: not below 50%.
    expect(keys(pool)).toEqual(["10.0.0.2:50051", "10.0.0.3:50051"]);
    fail(b as Subchannel);
    // 1 of 3 left: panic, ejections are ignored.
    expect(keys(pool)).toEqual(["10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"]);
    expect(pool.snapshot().endpoints.filter((e) => e.ejected).length).toBe(2);
  });

  it("follows active health checks: only SERVING or unchecked endpoints take calls", () => {
    const reports = new Map<string, (s: "serving" | "not-serving" | "unimplemented") => void>();
    let stopped = 0;
    const { pool, conn, readyAll } = setup({
      endpoints: endpoints(2),
      healthWatcher(sc, report) {
        reports.set(sc.key, report);
        return () => stopped++;
      },
    });
    readyAll();
    expect(keys(pool)).toEqual([]);
    reports.get("10.0.0.1:50051")?.("serving");
    expect(keys(pool)).toEqual(["10.0.0.1:50051"]);
    reports.get("10.0.0.2:50051")?.("unimplemented");
    expect(keys(pool)).toEqual(["10.0.0.1:50051", "10.0.0.2:50051"]);
    reports.get("10.0.0.1:50051")?.("not-serving");
    expect(keys(pool)).toEqual(["10.0.0.2:50051"]);
    expect(pool.snapshot().endpoints.map((e) => e.health)).toEqual(["not-serving", "disabled"]);
    conn(1).set("transient-failure");
    expect(stopped).toBe(1);
  });

  it("hands the call and the candidates' attributes and weights to the balancer", () => {
    const seen: Array<{ method: string; user: string | undefined; hashKeys: string[]; weights: number[] }> = [];
    const balancer: Balancer = {
      name: "spy",
      pick(candidates, call) {
        seen.push({
          method: call.method,
          user: call.header("x-user"),
          hashKeys: candidates.map((c) => c.hashKey),
          weights: candidates.map((c) => c.weight),
        });
        return candidates[1];
      },
    };
    const { pool, readyAll } = setup({
      balancer,
      endpoints: [
        { host: "10.0.0.1", port: 50051, weight: 3, hashKey: "pod-a" },
        { host: "10.0.0.2", port: 50051 },
      ],
    });
    readyAll();
    const call: PickCall = { method: "pkg.Svc/Do", header: (n) => (n === "x-user" ? "ann" : undefined) };
    expect(pool.tryPick(undefined, call)?.key).toBe("10.0.0.2:50051");
    expect(seen).toEqual([
      { method: "pkg.Svc/Do", user: "ann", hashKeys: ["pod-a", "10.0.0.2:50051"], weights: [3, 1] },
    ]);
  });

  it("spreads retries that avoid a failed endpoint evenly over the others, round-robin included", () => {
    const { pool, readyAll } = setup({ balancer: createRoundRobinBalancer(), outlierDetection: false });
    readyAll();
    const calls = new Map<string, number>();
    const retries = new Map<string, number>();
    const count = (into: Map<string, number>, sc: Subchannel | undefined) =>
      into.set(sc?.key ?? "", (into.get(sc?.key ?? "") ?? 0) + 1);
    for (let call = 0; call < 300; call++) {
      const sc = pool.tryPick();
      count(calls, sc);
      // 10.0.0.1 fails every call: its calls are retried elsewhere.
      if (sc?.key === "10.0.0.1:50051") count(retries, pool.tryPick(sc));
    }
    const [a, b, c] = ["10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"];
    expect(retries.get(a)).toBeUndefined();
    // Every attempt, first or retry, alike on the healthy two (before: 10.0.0.2 got none).
    const attempts = (k: string) => (calls.get(k) ?? 0) + (retries.get(k) ?? 0);
    expect(attempts(b as string)).toBe(attempts(c as string));
  });

  it("dials one endpoint at a time for a first-reachable balancer", () => {
    const { conn } = setup({ balancer: { ...first, connections: "first-reachable" } });
    expect([conn(1).connects, conn(2).connects, conn(3).connects]).toEqual([1, 0, 0]);
    conn(1).set("connecting");
    conn(1).set("transient-failure", new Error("ECONNREFUSED"));
    expect([conn(1).connects, conn(2).connects, conn(3).connects]).toEqual([1, 1, 0]);
  });

  it("dials every endpoint by default", () => {
    const { conn } = setup();
    expect([conn(1).connects, conn(2).connects, conn(3).connects]).toEqual([1, 1, 1]);
  });

  it("fails a wait with DEADLINE_EXCEEDED at the call's deadline, UNAVAILABLE at waitForReadyMs", async () => {
    const { pool } = setup({ waitForReadyMs: 30 });
    const withDeadline = await pool.waitForPick(performance.now() + 30, undefined).catch((e) => e);
    expect(withDeadline).toBeInstanceOf(NoEndpointError);
    expect(withDeadline).toMatchObject({ reason: "deadline", code: 4 });
    expect(withDeadline.message).toContain('no ready endpoint for "static:///test" (3 idle)');
    const without = await pool.waitForPick(undefined, undefined).catch((e) => e);
    expect(without).toMatchObject({ reason: "wait-limit", code: 14 });
  });

  it("wakes a waiting call when an endpoint becomes ready", async () => {
    const { pool, conn } = setup();
    const waiting = pool.waitForPick(performance.now() + 10_000, undefined);
    conn(3).set("ready");
    expect((await waiting).key).toBe("10.0.0.3:50051");
  });

  it("snapshots every endpoint with its state, load, attributes and verdict", () => {
    const { pool, conn } = setup({
      endpoints: [{ host: "10.0.0.1", port: 50051, weight: 2, zone: "eu-1a", nodeName: "node-7", hashKey: "pod-1" }],
    });
    conn(1).set("ready");
    const sc = pool.candidates()[0] as Subchannel;
    sc.begin();
    expect(pool.snapshot()).toEqual({
      target: "static:///test",
      balancer: "first",
      eventLoop: expect.objectContaining({ stalls: expect.any(Number), maxStallMs: expect.any(Number) }),
      endpoints: [
        {
          address: "10.0.0.1:50051",
          state: "ready",
          draining: false,
          candidate: true,
          inFlight: 1,
          pending: 1,
          connections: 1,
          latencyMs: expect.any(Number),
          calls: 1,
          failures: 0,
          retries: 0,
          ejected: false,
          ejections: 0,
          health: "disabled",
          weight: 2,
          effectiveWeight: 2,
          overloadPenaltyMs: 0,
          zone: "eu-1a",
          nodeName: "node-7",
          hashKey: "pod-1",
        },
      ],
      waiting: 0,
      limited: { maxInFlightPerEndpoint: 0, maxPending: 0 },
    });
  });

  it("fails waiting calls when closing and closes every connection on destroy", async () => {
    const { pool, connections } = setup();
    const waiting = pool.waitForPick(performance.now() + 10_000, undefined).catch((e) => e);
    pool.beginClose();
    expect(await waiting).toMatchObject({ reason: "closed", code: 14 });
    await pool.destroy();
    expect([...connections.values()].every((c) => c.closed)).toBe(true);
  });

  it("passes over an endpoint at maxInFlightPerEndpoint, fails fast when all are full, wakes a waiter when one has room", async () => {
    const { pool, readyAll, events } = setup({ limits: { maxInFlightPerEndpoint: 1, whenFull: "fail" } });
    readyAll();
    const [a, b, c] = pool.candidates() as unknown as [Subchannel, Subchannel, Subchannel];
    const starts = [a, b, c].map((sc) => {
      expect(pool.tryPick()).toBe(sc);
      return sc.begin();
    });
    expect(pool.tryPick()).toBeUndefined();
    const full = await pool.waitForPick(performance.now() + 5000, undefined).catch((e: unknown) => e);
    expect(full).toMatchObject({ reason: "max-in-flight", code: 8 });
    expect((full as Error).message).toContain("has 1 calls in flight, the limit (limits.maxInFlightPerEndpoint)");
    expect(events.filter((e) => e.type === "limit-reached")).toEqual([
      { type: "limit-reached", limit: "maxInFlightPerEndpoint", max: 1, calls: 1 },
    ]);
    b.end(starts[1] as number, { ok: true, failure: false, pending: true, sample: true });
    expect(pool.tryPick()).toBe(b);
    expect(pool.snapshot().limited).toEqual({ maxInFlightPerEndpoint: 1, maxPending: 0 });

    const waiting = setup({ limits: { maxInFlightPerEndpoint: 1, whenFull: "wait" } });
    waiting.readyAll();
    const only = waiting.pool.candidates().map((sc) => [sc, sc.begin()] as const);
    const pick = waiting.pool.waitForPick(performance.now() + 5000, undefined);
    expect(waiting.pool.snapshot().waiting).toBe(1);
    const [sc, startedAt] = only[2] as readonly [Subchannel, number];
    sc.end(startedAt, { ok: true, failure: false, pending: true, sample: true });
    expect(await pick).toBe(sc);
    expect(waiting.pool.snapshot().waiting).toBe(0);
  });
});
