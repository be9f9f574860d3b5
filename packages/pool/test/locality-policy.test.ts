import type { Endpoint, Logger } from "@meshlite/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type CallOutcome,
  clientLocalityOf,
  createDrainingPolicy,
  createLocalityPolicy,
  createPolicyPipeline,
  createReadyPolicy,
  createSubchannel,
  type LocalityOptions,
  type PolicyHooks,
  type PoolEvent,
  resolveLocality,
  type Subchannel,
} from "../src/index.js";
import { createFakeConnection, type FakeConnection } from "./support/fake-connection.js";

const success: CallOutcome = { ok: true, failure: false, pending: true, sample: true };

/** Three zones a, b, c with two endpoints each (10.0.{zone}.{1,2}), every one ready. */
function threeZones(extra: (zone: string, i: number) => Partial<Endpoint> = () => ({})): Endpoint[] {
  return ["a", "b", "c"].flatMap((zone, z) =>
    [1, 2].map((i) => ({
      host: `10.0.${z + 1}.${i}`,
      port: 80,
      zone,
      nodeName: `node-${zone}${i}`,
      ...extra(zone, i),
    })),
  );
}

function setUp(
  endpoints: Endpoint[],
  options: LocalityOptions,
  zoneOfNode?: (n: string) => Promise<string | undefined>,
) {
  const events: PoolEvent[] = [];
  const infos: string[] = [];
  let changes = 0;
  const logger: Logger = { debug() {}, info: (m) => infos.push(m), warn() {}, error() {} };
  const resolved = resolveLocality(options, "test");
  if (resolved === false) throw new Error("unreachable");
  const all: Subchannel[] = [];
  const hooks: PolicyHooks = {
    target: "static:///test",
    logger,
    emit: (e) => events.push(e),
    changed: () => changes++,
    endpoints: () => all,
  };
  const policy = createLocalityPolicy(resolved, hooks, zoneOfNode);
  for (const e of endpoints) {
    const sc = createSubchannel(e, createFakeConnection(e), undefined, (s, outcome) => policy.onCallEnd?.(s, outcome));
    (sc.connection as FakeConnection).set("ready");
    all.push(sc);
  }
  const pipeline = createPolicyPipeline([createDrainingPolicy(), createReadyPolicy(), policy]);
  const run = () => pipeline.run(all);
  const zonesOf = (list: readonly Subchannel[]) => [...new Set(list.map((sc) => sc.endpoint.zone))].sort();
  const inZone = (zone: string) => all.filter((sc) => sc.endpoint.zone === zone);
  /** Runs `n` calls of `ms` each on every endpoint of `list` (a fake clock: the call "started" `ms` ago). */
  const callsOn = (list: readonly Subchannel[], n: number, ms: number) => {
    for (let i = 0; i < n; i++) for (const sc of list) sc.end(sc.begin() - ms, success);
  };
  /** The policy's state as the pool would show it: after the run a change asks for. */
  const now = () => {
    run();
    return policy.snapshot();
  };
  return { policy, all, events, infos, run, now, zonesOf, inZone, callsOn, changes: () => changes };
}

describe("the locality policy", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "setTimeout", "clearTimeout", "performance"] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("hands the balancer the client's zone only, and says so in the snapshot and an event", () => {
    const { run, zonesOf, policy, events } = setUp(threeZones(), { zone: "a", prefer: "zone" });
    expect(zonesOf(run())).toEqual(["a"]);
    expect(policy.snapshot()).toMatchObject({ zone: "a", zoneSource: "options", state: "preferring", zones: ["a"] });
    expect(events).toEqual([{ type: "locality", state: "preferring", reason: 'preferring zone "a"', zones: ["a"] }]);
    policy.close?.();
  });

  it("follows the endpoints' hints by default: zone b's endpoints are hinted for zone a", () => {
    const hinted = threeZones((zone) => ({ hints: { forZones: [zone === "b" ? "a" : zone === "a" ? "b" : "c"] } }));
    const { run, zonesOf, policy } = setUp(hinted, { zone: "a" });
    expect(zonesOf(run())).toEqual(["b"]);
    expect(policy.snapshot()).toMatchObject({ prefer: "hints", state: "preferring" });
    policy.close?.();
  });

  it("ignores hints unless every endpoint has them (as kube-proxy), and does nothing without hints or prefer", () => {
    const partly = threeZones((zone, i) => (zone === "c" && i === 2 ? {} : { hints: { forZones: [zone] } }));
    const a = setUp(partly, { zone: "a" });
    expect(a.run()).toHaveLength(6);
    expect(a.policy.snapshot().state).toBe("off");
    const b = setUp(threeZones(), { zone: "a" });
    expect(b.run()).toHaveLength(6);
    expect(b.policy.snapshot().reason).toContain("no topology hints");
    a.policy.close?.();
    b.policy.close?.();
  });

  it("has no preference when the local zone is too small: one local endpoint of six, minimum two", () => {
    const endpoints = threeZones().map((e, i) => (i === 1 ? { ...e, zone: "b" } : e));
    const { run, policy } = setUp(endpoints, { zone: "a", prefer: "zone", minEndpoints: 2 });
    expect(run()).toHaveLength(6);
    expect(policy.snapshot()).toMatchObject({ state: "off" });
    expect(policy.snapshot().reason).toContain("fewer than 2");
    policy.close?.();
  });

  it("has no preference when too few local endpoints can take calls (panic threshold), and prefers again once they can", () => {
    const endpoints = [
      ...threeZones(),
      { host: "10.0.1.3", port: 80, zone: "a" },
      { host: "10.0.1.4", port: 80, zone: "a" },
    ];
    const { run, zonesOf, all, policy, events } = setUp(endpoints, { zone: "a", prefer: "zone", minEndpoints: 1 });
    const local = all.filter((sc) => sc.endpoint.zone === "a");
    for (const sc of local.slice(0, 2)) (sc.connection as FakeConnection).set("connecting");
    (local[2] as Subchannel).draining = true;
    // 1 of 4 local endpoints can take calls: below 50%.
    expect(run()).toHaveLength(5);
    expect(policy.snapshot().reason).toContain("only 1 of the 4 endpoints");
    for (const sc of local.slice(0, 2)) (sc.connection as FakeConnection).set("ready");
    expect(zonesOf(run())).toEqual(["a"]);
    expect(events.map((e) => (e.type === "locality" ? e.state : e.type))).toEqual(["off", "preferring"]);
    policy.close?.();
  });

  it("with an unknown client zone balances over everything and logs it once at info", () => {
    const { run, infos, policy } = setUp(threeZones(), { prefer: "zone" });
    for (let i = 0; i < 5; i++) expect(run()).toHaveLength(6);
    expect(infos).toHaveLength(1);
    expect(infos[0]).toContain("the client's zone is unknown");
    policy.close?.();
  });

  it("prefers the client's node, then the rest of its zone", () => {
    const { run, now, policy, all, callsOn } = setUp(threeZones(), {
      zone: "a",
      node: "node-a1",
      prefer: "node",
      intervalMs: 100,
      holdMs: 1000,
    });
    expect(run().map((sc) => sc.endpoint.nodeName)).toEqual(["node-a1"]);
    const [a1, a2] = all as [Subchannel, Subchannel];
    callsOn([a1, a2], 10, 2);
    callsOn([a1], 20, 40);
    vi.advanceTimersByTime(250);
    expect(now()).toMatchObject({ state: "spilling", zones: ["a", "a"] });
    expect(run().map((sc) => sc.endpoint.nodeName)).toEqual(["node-a1", "node-a2"]);
    policy.close?.();
  });

  it("spills over to the nearest other zone when the local zone is slow, and comes back once it recovers", () => {
    const { run, now, zonesOf, inZone, callsOn, policy, events } = setUp(threeZones(), {
      zone: "a",
      prefer: "zone",
      intervalMs: 100,
      holdMs: 1000,
    });
    expect(zonesOf(run())).toEqual(["a"]);
    // Measured once (at startup, say): c answers in 2 ms, b in 3 ms.
    callsOn(inZone("b"), 10, 3);
    callsOn(inZone("c"), 10, 2);
    callsOn(inZone("a"), 10, 2);
    vi.advanceTimersByTime(500);
    expect(now().state).toBe("preferring");

    // Zone a turns slow: 40 ms against c's 2 ms.
    callsOn(inZone("a"), 10, 40);
    vi.advanceTimersByTime(250);
    expect(now()).toMatchObject({ state: "spilling", zones: ["a", "c"] });
    expect(policy.snapshot().reason).toMatch(/^local latency 40\.\d ms, above 2x and \+5 ms of 2\.\d ms$/);
    expect(zonesOf(run())).toEqual(["a", "c"]);
    // Of the two slow local endpoints one stays in as a probe: p2c is never left with two slow ones.
    expect(run().map((sc) => sc.key)).toEqual(["10.0.1.1:80", "10.0.3.1:80", "10.0.3.2:80"]);

    // Still slow (the balancer sends it a call now and then): it stays spilled, also after the hold time.
    for (let i = 0; i < 20; i++) {
      if (i % 5 === 0) callsOn(inZone("a"), 1, 40);
      callsOn(inZone("c"), 3, 2);
      vi.advanceTimersByTime(100);
    }
    expect(zonesOf(run())).toEqual(["a", "c"]);

    // Recovered: back to zone a after four checks within the return band.
    for (let i = 0; i < 8; i++) {
      callsOn(inZone("a"), 3, 2);
      callsOn(inZone("c"), 3, 2);
      vi.advanceTimersByTime(100);
    }
    expect(now().state).toBe("preferring");
    expect(zonesOf(run())).toEqual(["a"]);
    expect(events.map((e) => (e.type === "locality" ? `${e.state} ${e.zones.join("+")}` : e.type))).toEqual([
      "preferring a",
      "spilling a+c",
      "preferring a",
    ]);
    policy.close?.();
  });

  it("does not spill for latency within the band, nor on an endpoint's first few samples", () => {
    const { now, inZone, callsOn, policy } = setUp(threeZones(), { zone: "a", prefer: "zone", intervalMs: 100 });
    now();
    callsOn(inZone("b"), 10, 2);
    callsOn(inZone("c"), 10, 2);
    // 6 ms against 2 ms is 3x but not 5 ms more.
    callsOn(inZone("a"), 20, 6);
    vi.advanceTimersByTime(1000);
    expect(now().state).toBe("preferring");
    // 40 ms on four samples only: not measured enough to count.
    const fresh = setUp(threeZones(), { zone: "a", prefer: "zone", intervalMs: 100 });
    fresh.now();
    fresh.callsOn(fresh.inZone("b"), 10, 2);
    fresh.callsOn(fresh.inZone("a"), 4, 40);
    vi.advanceTimersByTime(1000);
    expect(fresh.now().state).toBe("preferring");
    fresh.policy.close?.();
    policy.close?.();
  });

  it("stays spilled longer each time it spills again soon after coming back", () => {
    const { now, inZone, callsOn, policy } = setUp(threeZones(), {
      zone: "a",
      prefer: "zone",
      intervalMs: 100,
      holdMs: 3000,
    });
    now();
    callsOn(inZone("b"), 10, 2);
    callsOn(inZone("c"), 10, 2);
    const spillFor = () => {
      for (let waited = 0; now().state !== "spilling" && waited < 5000; waited += 100) {
        callsOn(inZone("a"), 3, 40);
        vi.advanceTimersByTime(100);
      }
      expect(now().state).toBe("spilling");
      let ms = 0;
      while (now().state === "spilling" && ms < 20_000) {
        callsOn(inZone("a"), 3, 2);
        callsOn(inZone("c"), 3, 2);
        vi.advanceTimersByTime(100);
        ms += 100;
      }
      return ms;
    };
    const first = spillFor();
    const second = spillFor();
    // The first spill lasts the hold time (3 s); spilling again right after coming back, twice that.
    expect(first).toBeGreaterThanOrEqual(3000);
    expect(first).toBeLessThan(6000);
    expect(second).toBeGreaterThanOrEqual(6000);
    policy.close?.();
  });

  it("still spills for a zone that slows down right after traffic came back, once the other zones' figures are old", () => {
    const { now, inZone, callsOn, policy } = setUp(threeZones(), {
      zone: "a",
      prefer: "zone",
      intervalMs: 100,
      holdMs: 1000,
    });
    now();
    callsOn(inZone("a"), 10, 2);
    vi.advanceTimersByTime(1000);
    // Slow (the other zones unmeasured: against the 2 ms zone a showed) and spilled to b, which is no faster.
    for (let t = 0; now().state !== "spilling" && t < 3000; t += 100) {
      callsOn(inZone("a"), 3, 40);
      vi.advanceTimersByTime(100);
    }
    expect(now().state).toBe("spilling");
    for (let t = 0; now().state === "spilling" && t < 10_000; t += 100) {
      callsOn(inZone("a"), 3, 40);
      callsOn(inZone("b"), 3, 40);
      vi.advanceTimersByTime(100);
    }
    expect(now().state).toBe("preferring");
    // Slow right after coming back: once b's 40 ms are over 10 s old, zone a's own 2 ms is the reference again.
    for (let t = 0; now().state !== "spilling" && t < 15_000; t += 100) {
      callsOn(inZone("a"), 3, 40);
      vi.advanceTimersByTime(100);
    }
    expect(now().state).toBe("spilling");
    policy.close?.();
  });

  it("asks the resolver for the zone of the client's node when neither options nor the environment name it", async () => {
    const asked: string[] = [];
    const { run, now, zonesOf, policy, changes } = setUp(
      threeZones(),
      { node: "node-x", prefer: "zone" },
      async (node) => {
        asked.push(node);
        return "b";
      },
    );
    expect(now().reason).toContain('looking up the zone of node "node-x"');
    await vi.waitFor(() => expect(changes()).toBe(1));
    expect(asked).toEqual(["node-x"]);
    expect(zonesOf(run())).toEqual(["b"]);
    expect(policy.snapshot()).toMatchObject({ zone: "b", zoneSource: "node label", node: "node-x" });
    policy.close?.();
  });
});

describe("client locality and locality options", () => {
  it("takes the zone and node from options, else from MESHLITE_ZONE and NODE_NAME", () => {
    expect(clientLocalityOf({ zone: "z1" }, { MESHLITE_ZONE: "z2", NODE_NAME: "n" })).toEqual({
      zone: "z1",
      zoneSource: "options",
      node: "n",
      nodeSource: "env NODE_NAME",
    });
    expect(clientLocalityOf({}, { MESHLITE_ZONE: "z2" })).toEqual({ zone: "z2", zoneSource: "env MESHLITE_ZONE" });
    expect(clientLocalityOf({}, {})).toEqual({});
  });

  it("rejects bad options with what is accepted", () => {
    expect(() => resolveLocality({ prefer: "region" as never }, "createChannel: locality")).toThrow(
      'createChannel: locality.prefer: unknown preference "region"; expected "node", "zone" or "none"',
    );
    expect(() => resolveLocality({ minEndpont: 2 } as never, "createChannel: locality")).toThrow(
      'unknown key "minEndpont" (did you mean "minEndpoints"?)',
    );
    expect(() => resolveLocality({ spillAt: { ratio: 0.5 } }, "x")).toThrow("x.spillAt.ratio must be a number >= 1");
    expect(() => resolveLocality({ endpointZones: { "10.0.0.1": 3 as never } }, "x")).toThrow(
      'x.endpointZones["10.0.0.1"] must be a zone name',
    );
    expect(resolveLocality(false, "x")).toBe(false);
  });
});
