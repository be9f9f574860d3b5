import { createCallRate, createPeakEwma, type EndpointLoad, type PickCall, type PickCandidate } from "@meshlite/core";
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
  rate: number;
}

function candidates(n: number, load: (i: number) => Partial<FakeLoad> = () => ({}), weight?: (i: number) => number) {
  return Array.from({ length: n }, (_, i): PickCandidate & { fake: FakeLoad } => {
    const fake: FakeLoad = { inFlight: 0, pending: 0, latency: 10, rate: 0, ...load(i) };
    const l: EndpointLoad = {
      get inFlight() {
        return fake.inFlight;
      },
      get pending() {
        return fake.pending;
      },
      latencyMs: () => fake.latency,
      callRate: () => fake.rate,
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

/** A call without headers: these balancers do not look at it. */
const call: PickCall = { method: "test.v1.Service/Call", header: () => undefined };

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
    expect(counts(() => b.pick(ready, call), 100)).toEqual(new Map([["10.0.0.0:80", 100]]));
    expect(b.pick(ready.slice(1), call)?.key).toBe("10.0.0.1:80");
  });
});

describe("round-robin", () => {
  it("rotates strictly: every endpoint once per round", () => {
    const b = createRoundRobinBalancer();
    const ready = candidates(5);
    for (let round = 0; round < 4; round++) {
      const keys = new Set(Array.from({ length: 5 }, () => b.pick(ready, call)?.key));
      expect(keys.size).toBe(5);
    }
  });

  it("starts at a random position", () => {
    const ready = candidates(4);
    const firsts = new Set(
      [0, 0.3, 0.6, 0.9].map((r) => createRoundRobinBalancer({ random: () => r }).pick(ready, call)?.key),
    );
    expect(firsts.size).toBe(4);
  });

  it("keeps rotating when the ready list shrinks", () => {
    const b = createRoundRobinBalancer({ random: () => 0 });
    const ready = candidates(4);
    b.pick(ready, call);
    b.pick(ready, call);
    b.pick(ready, call);
    const fewer = ready.slice(0, 2);
    const keys = Array.from({ length: 4 }, () => b.pick(fewer, call)?.key);
    expect(new Set(keys).size).toBe(2);
  });
});

describe("least-request", () => {
  it("never picks the busiest of two, and spreads evenly when idle", () => {
    const b = createLeastRequestBalancer();
    const ready = candidates(2, (i) => ({ inFlight: i === 0 ? 10 : 1 }));
    expect(counts(() => b.pick(ready, call), 200).get("10.0.0.0:80")).toBeUndefined();
    const even = counts(() => b.pick(candidates(4), call), 8000);
    for (const n of even.values()) expect(n).toBeGreaterThan(1500);
  });

  it("with more choices, finds the least loaded more often", () => {
    const ready = candidates(10, (i) => ({ inFlight: i === 7 ? 0 : 5 }));
    const two = counts(() => createLeastRequestBalancer().pick(ready, call), 2000).get("10.0.0.7:80") ?? 0;
    const ten =
      counts(() => createLeastRequestBalancer({ choiceCount: 10 }).pick(ready, call), 2000).get("10.0.0.7:80") ?? 0;
    expect(ten).toBe(2000);
    expect(two).toBeLessThan(ten);
    expect(two).toBeGreaterThan(200);
  });

  it("rejects a choice count outside 2..10", () => {
    expect(() => createLeastRequestBalancer({ choiceCount: 1 })).toThrow(/2 to 10/);
    expect(() => createLeastRequestBalancer({ choiceCount: 11 })).toThrow(/2 to 10/);
  });
});

/**
 * Endpoints measured the way the channel measures them (peak-EWMA, call rate)
 * on a fake clock: every pick starts a call that takes `latency(i)` ms.
 */
function measuredEndpoints(
  n: number,
  clock: { now: number },
  defaultMs?: number,
  first = 0,
  /** Gives each estimate its peers' mean latency, as the pool does (see createPeakEwma's `peerMs`). */
  withPeers = true,
) {
  const list = Array.from({ length: n }, (_, k) => {
    const i = first + k;
    const peerMs = () => {
      const others = list.filter((e) => e.key !== `10.0.0.${i}:80`);
      return others.reduce((sum, e) => sum + e.load.latencyMs(), 0) / others.length;
    };
    const ewma = createPeakEwma(
      defaultMs === undefined ? {} : { defaultMs },
      clock.now,
      withPeers ? peerMs : undefined,
    );
    const rate = createCallRate({}, clock.now);
    return {
      key: `10.0.0.${i}:80`,
      hashKey: `10.0.0.${i}:80`,
      endpoint: { host: `10.0.0.${i}`, port: 80 },
      weight: 1,
      load: {
        inFlight: 0,
        pending: 0,
        latencyMs: (now = clock.now) => ewma.estimate(now),
        callRate: (now = clock.now) => rate.rate(now),
      },
      start() {
        rate.record(clock.now);
      },
      observe(ms: number) {
        ewma.observe(ms, clock.now + ms);
      },
    };
  });
  return list;
}

/** `rate` calls/s for `seconds` through `b`, one call at a time; counts per endpoint. */
function run(
  b: ReturnType<typeof createP2cBalancer>,
  endpoints: ReturnType<typeof measuredEndpoints>,
  clock: { now: number },
  rate: number,
  seconds: number,
  latency: (i: number, call: number) => number,
) {
  const counts = endpoints.map(() => 0);
  for (let n = 0; n < rate * seconds; n++) {
    clock.now += 1000 / rate;
    const picked = b.pick(endpoints, call) as (typeof endpoints)[number];
    const i = endpoints.indexOf(picked);
    counts[i] = (counts[i] ?? 0) + 1;
    picked.start();
    picked.observe(latency(i, n));
  }
  return counts;
}

/** A deterministic source of randomness. */
function seeded(seed: number) {
  let s = seed;
  return () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647;
  };
}

describe("p2c", () => {
  it("sends no calls to an endpoint clearly slower than the other of its pair", () => {
    const b = createP2cBalancer();
    const ready = candidates(5, (i) => ({ latency: i === 2 ? 100 : 5 }));
    const seen = counts(() => b.pick(ready, call), 5000);
    // The slow one wins only when it is drawn against itself, which p2c never does.
    expect(seen.get("10.0.0.2:80") ?? 0).toBe(0);
    expect(seen.size).toBe(4);
  });

  it("counts latencies within 2x (or 1 ms) as equal: the endpoint with fewer calls in flight wins", () => {
    const b = createP2cBalancer();
    const ready = candidates(2, (i) => (i === 0 ? { latency: 5, inFlight: 1 } : { latency: 9, inFlight: 0 }));
    expect(counts(() => b.pick(ready, call), 100).get("10.0.0.1:80")).toBe(100);
    const close = candidates(2, (i) => (i === 0 ? { latency: 0.2, inFlight: 1 } : { latency: 1.1, inFlight: 0 }));
    expect(counts(() => b.pick(close, call), 100).get("10.0.0.1:80")).toBe(100);
    const apart = candidates(2, (i) => (i === 0 ? { latency: 5, inFlight: 1 } : { latency: 11, inFlight: 0 }));
    expect(counts(() => b.pick(apart, call), 100).get("10.0.0.0:80")).toBe(100);
  });

  it("between equals as busy, sends the call to the one called less often lately", () => {
    const b = createP2cBalancer();
    const ready = candidates(2, (i) => ({ latency: i === 0 ? 4 : 6, rate: i === 0 ? 30 : 20 }));
    expect(counts(() => b.pick(ready, call), 100).get("10.0.0.1:80")).toBe(100);
  });

  it("weighs pending calls when latencies differ: a fast endpoint that is piling up loses to an idle one", () => {
    const b = createP2cBalancer();
    const ready = candidates(2, (i) => (i === 0 ? { latency: 5, pending: 20 } : { latency: 20, pending: 0 }));
    expect(b.pick(ready, call)?.key).toBe("10.0.0.1:80");
  });

  it("follows SRV weights: calls in flight and call rates count per unit of weight", () => {
    const b = createP2cBalancer();
    const busier = candidates(
      2,
      (i) => ({ inFlight: i === 0 ? 2 : 1 }),
      (i) => (i === 0 ? 3 : 1),
    );
    expect(b.pick(busier, call)?.key).toBe("10.0.0.0:80");
    const oftener = candidates(
      2,
      (i) => ({ rate: i === 0 ? 30 : 15 }),
      (i) => (i === 0 ? 3 : 1),
    );
    expect(b.pick(oftener, call)?.key).toBe("10.0.0.0:80");
  });

  it("gives equal endpoints equal shares at one call at a time, despite latency noise", () => {
    const clock = { now: 0 };
    const random = seeded(7);
    const endpoints = measuredEndpoints(4, clock);
    // 1.5-3 ms, and one call in fifty 20x slower (a GC pause, a late timer).
    const noisy = () => (random() < 0.02 ? 40 : 1.5 + 1.5 * random());
    for (const rate of [50, 100, 400]) {
      const shares = run(createP2cBalancer({ random, now: () => clock.now }), endpoints, clock, rate, 8, noisy).map(
        (n) => (100 * n) / (rate * 8),
      );
      for (const share of shares) {
        expect(share, `${rate} calls/s: ${shares.map((s) => s.toFixed(1)).join(" ")}`).toBeGreaterThan(23);
        expect(share, `${rate} calls/s: ${shares.map((s) => s.toFixed(1)).join(" ")}`).toBeLessThan(27);
      }
    }
  });

  it("gives a new endpoint its share from the start, and leaves a slow one after a few calls", () => {
    const clock = { now: 0 };
    const random = seeded(11);
    const b = createP2cBalancer({ random, now: () => clock.now });
    const endpoints = measuredEndpoints(4, clock);
    run(b, endpoints, clock, 100, 5, () => 2);
    // Started from the others' mean estimate, as the channel does.
    const mean = endpoints.reduce((sum, e) => sum + e.load.latencyMs(), 0) / endpoints.length;
    const grown = [...endpoints, ...measuredEndpoints(2, clock, mean, 4)];
    const first = run(b, grown, clock, 100, 2, () => 2);
    for (const n of first) expect(n / 200).toBeCloseTo(1 / 6, 1);
    // Endpoint 0 turns 15x slower: after its first few calls it gets almost none.
    const slow = run(b, grown, clock, 100, 5, (i) => (i === 0 ? 30 : 2));
    expect(slow[0]).toBeLessThan(10);
  });
});

describe("p2c over a pod that stays slow", () => {
  it("tries it again less and less often: under half the calls it got without the re-probe backoff", () => {
    const share = (withPeers: boolean) => {
      const clock = { now: 0 };
      const random = seeded(5);
      const endpoints = measuredEndpoints(5, clock, undefined, 0, withPeers);
      const b = createP2cBalancer({ random, now: () => clock.now });
      run(b, endpoints, clock, 250, 2, () => 1.5);
      // 30 ms slower from now on, for a minute.
      const counts = run(b, endpoints, clock, 250, 60, (i) => (i === 0 ? 31.5 : 1 + random()));
      return (100 * (counts[0] ?? 0)) / (250 * 60);
    };
    const [backoff, plain] = [share(true), share(false)];
    console.log(
      `share of a pod 30 ms slower over 60 s: ${backoff.toFixed(2)}% (decay without backoff: ${plain.toFixed(2)}%)`,
    );
    expect(backoff).toBeLessThan(plain / 2);
    // Tried again about every 8 s: a handful of calls a minute, not one every 2 s.
    expect(backoff).toBeLessThan(0.2);
  });
});

describe("createBalancer", () => {
  it("makes each named balancer, p2c by default, and accepts a Balancer object", () => {
    expect(createBalancer(undefined).name).toBe("p2c");
    for (const name of [
      "p2c",
      "least-request",
      "round-robin",
      "weighted-round-robin",
      "pick-first",
      "ring-hash",
      "maglev",
    ] as const) {
      expect(createBalancer(name).name).toBe(name);
    }
    const custom = { name: "mine", pick: (r: readonly PickCandidate[]) => r[0] };
    expect(createBalancer(custom)).toBe(custom);
  });

  it("rejects an unknown name with the accepted ones", () => {
    expect(() => createBalancer("random" as never)).toThrow(
      'unknown balancer "random": expected one of "p2c", "least-request", "round-robin", "weighted-round-robin", "pick-first", "ring-hash", "maglev" or a Balancer object',
    );
  });
});
