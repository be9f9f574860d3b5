// The slow-start policy without sockets: fake connections, a fake clock.
import { silentLogger } from "@meshlite/core";
import { describe, expect, it } from "vitest";
import { waitFor } from "../../../test/support/wait-for.js";
import {
  createSlowStartPolicy,
  createSubchannel,
  type PolicyHooks,
  type ResolvedSlowStart,
  resolveSlowStart,
  type Subchannel,
  slowStartFactor,
} from "../src/index.js";
import { createFakeConnection, type FakeConnection } from "./support/fake-connection.js";

function subchannel(n: number, weight = 1): Subchannel {
  const endpoint = { host: `10.0.0.${n}`, port: 80, weight };
  const sc = createSubchannel(endpoint, createFakeConnection(endpoint), undefined, () => {});
  (sc.connection as FakeConnection).set("ready");
  return sc;
}

const options = resolveSlowStart({ windowMs: 10_000 }, "test") as ResolvedSlowStart;
const context = { inputOf: () => undefined };

/** A policy over a set the test changes, on a clock it moves. */
function setup(set: Subchannel[], o: ResolvedSlowStart = options) {
  let now = 1000;
  let changes = 0;
  const hooks: PolicyHooks = {
    target: "static:///test",
    logger: silentLogger,
    emit: () => {},
    changed: () => changes++,
    endpoints: () => set,
  };
  const policy = createSlowStartPolicy(o, hooks, () => now);
  /** One pipeline run: weights reset to the endpoints' own, then the policy. */
  const run = (candidates = set) => {
    for (const sc of set) sc.weight = sc.endpoint.weight ?? 1;
    policy.select(candidates, context);
    return candidates.map((sc) => Math.round(sc.weight * 1000) / 1000);
  };
  return {
    policy,
    run,
    advance: (ms: number) => {
      now += ms;
    },
    changes: () => changes,
  };
}

describe("slow start", () => {
  it("follows Envoy's formula: weight x max(minWeightPercent, (t / window)^(1 / aggression))", () => {
    expect(slowStartFactor(options, 0)).toBe(0.1);
    expect(slowStartFactor(options, 5000)).toBeCloseTo(0.5);
    expect(slowStartFactor(options, 10_000)).toBe(1);
    const aggressive = resolveSlowStart({ windowMs: 10_000, aggression: 2, minWeightPercent: 0 }, "test");
    expect(slowStartFactor(aggressive as ResolvedSlowStart, 2500)).toBeCloseTo(0.5);
    expect(resolveSlowStart(undefined, "t")).toEqual({ windowMs: 30_000, aggression: 1, minWeightPercent: 10 });
    expect(resolveSlowStart(false, "t")).toBe(false);
  });

  it("rejects bad options, saying what is accepted", () => {
    expect(() => resolveSlowStart({ windowMs: 0 }, "createChannel: slowStart")).toThrow(
      "createChannel: slowStart.windowMs must be a number of milliseconds > 0, got 0",
    );
    expect(() => resolveSlowStart({ aggression: -1 }, "x")).toThrow("x.aggression must be a number > 0");
    expect(() => resolveSlowStart({ minWeightPercent: 150 }, "x")).toThrow("from 0 to 100, got 150");
    expect(() => resolveSlowStart({ window: 5 } as never, "x")).toThrow('unknown key "window"');
    expect(() => resolveSlowStart(true as never, "x")).toThrow("must be an object");
  });

  it("does not ramp an endpoint the locality policy left out and hands back (a spill-over to a warm zone)", () => {
    const set = [subchannel(1), subchannel(2), subchannel(3)];
    for (const sc of set) sc.health = "disabled";
    const { policy } = setup(set);
    // The locality policy saw all three and kept the local two; then it spills and keeps all three.
    const run = (candidates: Subchannel[]) => {
      for (const sc of set) sc.weight = 1;
      policy.select(candidates, { inputOf: (name) => (name === "locality" ? set : undefined) });
      return candidates.map((sc) => sc.weight);
    };
    expect(run(set.slice(0, 2))).toEqual([1, 1]);
    expect(run(set)).toEqual([1, 1, 1]);
  });

  it("leaves the first set at full weight, ramps an endpoint that joins later over the window", () => {
    const set = [subchannel(1), subchannel(2, 2)];
    const { run, advance } = setup(set);
    expect(run()).toEqual([1, 2]);
    set.push(subchannel(3, 2));
    advance(10);
    expect(run()).toEqual([1, 2, 0.2]);
    advance(5000);
    expect(run()).toEqual([1, 2, 1]);
    advance(5000);
    expect(run()).toEqual([1, 2, 2]);
    // Done: no ramp again.
    advance(60_000);
    expect(run()).toEqual([1, 2, 2]);
  });

  it("changes no weight while no candidate is warm (every endpoint new)", () => {
    const set = [subchannel(1)];
    const { run, advance } = setup(set);
    // The first set never became a candidate (not ready), then a whole new set arrives.
    run([]);
    const fresh = [subchannel(2), subchannel(3)];
    set.splice(0, 1, ...fresh);
    advance(10);
    // Known before the pool had a candidate: the first set, warm.
    expect(run()).toEqual([1, 1]);
  });

  it("ramps an endpoint back from ejection or NOT_SERVING, and after a failed connection, not after a reconnect", () => {
    const set = [subchannel(1), subchannel(2), subchannel(3)];
    const [a, b, c] = set as [Subchannel, Subchannel, Subchannel];
    const { run, advance, policy } = setup(set);
    run();
    // Ejected: ready, left out by a policy before this one.
    advance(100);
    run([a, c]);
    advance(100);
    expect(run()).toEqual([1, 0.1, 1]);
    // NOT_SERVING counts the same; a connection that failed too.
    advance(20_000);
    c.health = "not-serving";
    run([a, b]);
    c.health = "serving";
    (a.connection as FakeConnection).set("transient-failure");
    policy.onState?.(a, "transient-failure");
    run([b]);
    (a.connection as FakeConnection).set("ready");
    advance(100);
    expect(run()).toEqual([0.1, 1, 0.1]);
    // A connection that went idle and reconnected (GOAWAY rotation) keeps its weight.
    advance(20_000);
    expect(run()).toEqual([1, 1, 1]);
    (b.connection as FakeConnection).set("connecting");
    policy.onState?.(b, "connecting");
    run([a, c]);
    (b.connection as FakeConnection).set("ready");
    expect(run()).toEqual([1, 1, 1]);
    // A ready endpoint still waiting for its first health report is not "back".
    b.health = "unknown";
    run([a, c]);
    b.health = "serving";
    expect(run()).toEqual([1, 1, 1]);
  });

  it("asks for a pipeline run every 1/20 of the window while something ramps, and stops after", async () => {
    const set = [subchannel(1)];
    const { run, changes, policy } = setup(set, resolveSlowStart({ windowMs: 400 }, "t") as ResolvedSlowStart);
    run();
    set.push(subchannel(2));
    run();
    await waitFor("a few steps", () => changes() >= 3);
    // The fake clock has not moved: still ramping. Close stops the timer.
    policy.close?.();
    const after = changes();
    await new Promise((r) => setTimeout(r, 100));
    expect(changes()).toBe(after);
  });

  it("stops its timer once nothing ramps", async () => {
    const set = [subchannel(1)];
    const { run, changes, advance } = setup(set, resolveSlowStart({ windowMs: 400 }, "t") as ResolvedSlowStart);
    run();
    set.push(subchannel(2));
    run();
    await waitFor("a step", () => changes() >= 1);
    advance(400);
    expect(run()).toEqual([1, 1]);
    const after = changes();
    await new Promise((r) => setTimeout(r, 100));
    expect(changes()).toBe(after);
  });
});
