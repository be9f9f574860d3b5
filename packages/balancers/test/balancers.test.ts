import type { EndpointLoad, PickCandidate } from "@meshlite/core";
import { describe, expect, it } from "vitest";
import {
  createBalancer,
  createLeastRequestBalancer,
  createP2cBalancer,
  createPickFirstBalancer,
  createRoundRobinBalancer,
} from "../src/index.js";

interface FakeLoad {
  inFlight: number;
  pending: number;
  latency: number;
}

function candidates(n: number, load: (i: number) => Partial<FakeLoad> = () => ({}), weight?: (i: number) => number) {
  return Array.from({ length: n }, (_, i): PickCandidate & { fake: FakeLoad } => {
    const fake: FakeLoad = { inFlight: 0, pending: 0, latency: 10, ...load(i) };
    const l: EndpointLoad = {
      get inFlight() {
        return fake.inFlight;
      },
      get pending() {
        return fake.pending;
      },
      latencyMs: () => fake.latency,
    };
    return {
      key: `10.0.0.${i}:80`,
      hashKey: `10.0.0.${i}:80`,
      endpoint: { host: `10.0.0.${i}`, port: 80, weight: weight?.(i) ?? 1 },
      weight: weight?.(i) ?? 1,
      load: l,
      fake,
    };
  });
}

function counts(pick: () => PickCandidate | undefined, times: number) {
  const seen = new Map<string, number>();
  for (let i = 0; i < times; i++) {
    const c = pick();
    if (c) seen.set(c.key, (seen.get(c.key) ?? 0) + 1);
  }
  return seen;
}

describe("pick-first", () => {
  it("always picks the first ready endpoint, and wants only one connection", () => {
    const b = createPickFirstBalancer();
    const ready = candidates(3);
    expect(b.connections).toBe("first-reachable");
    expect(counts(() => b.pick(ready), 100)).toEqual(new Map([["10.0.0.0:80", 100]]));
    expect(b.pick(ready.slice(1))?.key).toBe("10.0.0.1:80");
  });
});

describe("round-robin", () => {
  it("rotates strictly: every endpoint once per round", () => {
    const b = createRoundRobinBalancer();
    const ready = candidates(5);
    for (let round = 0; round < 4; round++) {
      const keys = new Set(Array.from({ length: 5 }, () => b.pick(ready)?.key));
      expect(keys.size).toBe(5);
    }
  });

  it("starts at a random position", () => {
    const ready = candidates(4);
    const firsts = new Set(
      [0, 0.3, 0.6, 0.9].map((r) => createRoundRobinBalancer({ random: () => r }).pick(ready)?.key),
    );
    expect(firsts.size).toBe(4);
  });

  it("keeps rotating when the ready list shrinks", () => {
    const b = createRoundRobinBalancer({ random: () => 0 });
    const ready = candidates(4);
    b.pick(ready);
    b.pick(ready);
    b.pick(ready);
    const fewer = ready.slice(0, 2);
    const keys = Array.from({ length: 4 }, () => b.pick(fewer)?.key);
    expect(new Set(keys).size).toBe(2);
  });
});

describe("least-request", () => {
  it("never picks the busiest of two, and spreads evenly when idle", () => {
    const b = createLeastRequestBalancer();
    const ready = candidates(2, (i) => ({ inFlight: i === 0 ? 10 : 1 }));
    expect(counts(() => b.pick(ready), 200).get("10.0.0.0:80")).toBeUndefined();
    const even = counts(() => b.pick(candidates(4)), 8000);
    for (const n of even.values()) expect(n).toBeGreaterThan(1500);
  });

  it("with more choices, finds the least loaded more often", () => {
    const ready = candidates(10, (i) => ({ inFlight: i === 7 ? 0 : 5 }));
    const two = counts(() => createLeastRequestBalancer().pick(ready), 2000).get("10.0.0.7:80") ?? 0;
    const ten = counts(() => createLeastRequestBalancer({ choiceCount: 10 }).pick(ready), 2000).get("10.0.0.7:80") ?? 0;
    expect(ten).toBe(2000);
    expect(two).toBeLessThan(ten);
    expect(two).toBeGreaterThan(200);
  });

  it("rejects a choice count outside 2..10", () => {
    expect(() => createLeastRequestBalancer({ choiceCount: 1 })).toThrow(/2 to 10/);
    expect(() => createLeastRequestBalancer({ choiceCount: 11 })).toThrow(/2 to 10/);
  });
});

describe("p2c", () => {
  it("sends few calls to a slow endpoint", () => {
    const b = createP2cBalancer();
    const ready = candidates(5, (i) => ({ latency: i === 2 ? 100 : 5 }));
    const seen = counts(() => b.pick(ready), 5000);
    // The slow one wins only when it is drawn against itself, which p2c never does.
    expect(seen.get("10.0.0.2:80") ?? 0).toBe(0);
    expect(seen.size).toBe(4);
  });

  it("weighs pending calls: a fast endpoint that is piling up loses to an idle one", () => {
    const b = createP2cBalancer();
    const ready = candidates(2, (i) => (i === 0 ? { latency: 5, pending: 20 } : { latency: 20, pending: 0 }));
    expect(b.pick(ready)?.key).toBe("10.0.0.1:80");
  });

  it("follows SRV weights", () => {
    const b = createP2cBalancer();
    const ready = candidates(
      2,
      () => ({ latency: 10, pending: 1 }),
      (i) => (i === 0 ? 3 : 1),
    );
    expect(b.pick(ready)?.key).toBe("10.0.0.0:80");
  });
});

describe("createBalancer", () => {
  it("makes each named balancer, p2c by default, and accepts a Balancer object", () => {
    expect(createBalancer(undefined).name).toBe("p2c");
    for (const name of ["p2c", "least-request", "round-robin", "pick-first"] as const) {
      expect(createBalancer(name).name).toBe(name);
    }
    const custom = { name: "mine", pick: (r: readonly PickCandidate[]) => r[0] };
    expect(createBalancer(custom)).toBe(custom);
  });

  it("rejects an unknown name with the accepted ones", () => {
    expect(() => createBalancer("random" as never)).toThrow(
      'unknown balancer "random": expected one of "p2c", "least-request", "round-robin", "pick-first" or a Balancer object',
    );
  });
});
