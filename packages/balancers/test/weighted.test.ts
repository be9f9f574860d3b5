// Effective weights (slow start sets them) control shares in every built-in
// balancer: a weight-0.1 endpoint gets about a tenth of an equal one's calls.
// Socket-free: a simulated clock, calls that last a fixed time, real call-rate
// meters; latency estimates are fixed per endpoint.
import { type Balancer, createCallRate, type PickCandidate } from "@meshlite/core";
import { describe, expect, it } from "vitest";
import { createLeastRequestBalancer, createP2cBalancer, createRoundRobinBalancer } from "../src/index.js";

interface SimEndpoint extends PickCandidate {
  weight: number;
  inFlight: number;
  latency: number;
  calls: number;
}

/**
 * Runs `picks` calls through `make(clock)`, one every `spacingMs` of
 * simulated time, each lasting `callMs`; returns calls per endpoint.
 */
function simulate(
  make: (clock: () => number) => Balancer,
  weights: number[],
  { picks = 20_000, spacingMs = 2, callMs = 10, latency = (_i: number): number => 10 } = {},
): number[] {
  let now = 0;
  const clock = () => now;
  const endpoints = weights.map((weight, i): SimEndpoint => {
    const rate = createCallRate({}, 0);
    const e: SimEndpoint = {
      key: `10.0.0.${i}:80`,
      hashKey: `10.0.0.${i}:80`,
      endpoint: { host: `10.0.0.${i}`, port: 80 },
      weight,
      inFlight: 0,
      latency: latency(i),
      calls: 0,
      load: {
        get inFlight() {
          return e.inFlight;
        },
        get pending() {
          return e.inFlight;
        },
        latencyMs: () => e.latency,
        callRate: (t = now) => rate.rate(t),
      },
    };
    (e as SimEndpoint & { record: (t: number) => void }).record = (t) => rate.record(t);
    return e;
  });
  const balancer = make(clock);
  const ends: Array<{ at: number; e: SimEndpoint }> = [];
  for (let i = 0; i < picks; i++) {
    now += spacingMs;
    while (ends.length > 0 && (ends[0] as { at: number }).at <= now) (ends.shift() as { e: SimEndpoint }).e.inFlight--;
    const e = balancer.pick(endpoints, { method: "", header: () => undefined }) as SimEndpoint;
    e.inFlight++;
    e.calls++;
    (e as SimEndpoint & { record: (t: number) => void }).record(now);
    ends.push({ at: now + callMs, e });
  }
  return endpoints.map((e) => e.calls);
}

/** The last endpoint's calls over the mean of the others'. */
function relativeShare(calls: number[]): number {
  const others = calls.slice(0, -1);
  return (calls.at(-1) as number) / (others.reduce((a, b) => a + b, 0) / others.length);
}

const p2c = (clock: () => number) => createP2cBalancer({ now: clock });
const leastRequest = (clock: () => number) => createLeastRequestBalancer({ now: clock });
const leastRequest3 = (clock: () => number) => createLeastRequestBalancer({ choiceCount: 3, now: clock });
const roundRobin = () => createRoundRobinBalancer();

describe("weighted shares", () => {
  for (const [name, make] of [
    ["p2c", p2c],
    ["least-request", leastRequest],
    ["least-request, 3 choices", leastRequest3],
    ["round-robin", roundRobin],
  ] as const) {
    for (const load of [
      { label: "low load (about 5 in flight)", spacingMs: 2, callMs: 10 },
      { label: "high load (about 50 in flight)", spacingMs: 0.2, callMs: 10 },
    ]) {
      it(`${name}, ${load.label}: weights 0.1, 0.5 and 1 get 0.1, 0.5 and 1 of an equal endpoint's share`, () => {
        for (const w of [0.1, 0.5, 1]) {
          const share = relativeShare(simulate(make, [1, 1, 1, 1, w], load));
          expect(share, `weight ${w}`).toBeGreaterThan(w * 0.6);
          expect(share, `weight ${w}`).toBeLessThan(w * 1.5);
        }
      });
    }
  }

  it("p2c: a low-weight endpoint that looks clearly faster (its estimate decays while idle) is not starved, nor flooded", () => {
    const share = relativeShare(simulate(p2c, [1, 1, 1, 1, 0.1], { latency: (i) => (i === 4 ? 2 : 10) }));
    expect(share).toBeGreaterThan(0.06);
    expect(share).toBeLessThan(0.15);
  });

  it("p2c: a clearly slower endpoint gets few calls whatever its weight", () => {
    for (const w of [0.1, 1]) {
      const calls = simulate(p2c, [1, 1, 1, 1, w], { latency: (i) => (i === 4 ? 50 : 10) });
      expect(relativeShare(calls), `weight ${w}`).toBeLessThan(0.05);
    }
  });

  it("round-robin: a weighted rotation spreads the light endpoint's calls evenly and keeps its place when the list is rebuilt", () => {
    const b = createRoundRobinBalancer({ random: () => 0.5 });
    const list = [1, 1, 1, 1, 0.25].map((weight, i) => ({
      key: `e${i}`,
      hashKey: `e${i}`,
      endpoint: { host: `10.0.0.${i}`, port: 80 },
      weight,
      load: { inFlight: 0, pending: 0, latencyMs: () => 1, callRate: () => 0 },
    }));
    const picks: string[] = [];
    for (let i = 0; i < 170; i++) {
      // A new list (same endpoints) every 7 picks, as the pool hands one after each change.
      const ready = i % 7 === 0 ? [...list] : undefined;
      picks.push((b.pick(ready ?? lastList, { method: "", header: () => undefined }) as PickCandidate).key);
      if (ready) lastList = ready;
    }
    const gaps: number[] = [];
    let last = -1;
    picks.forEach((k, i) => {
      if (k !== "e4") return;
      if (last >= 0) gaps.push(i - last);
      last = i;
    });
    // Weight 0.25 among four of 1: one pick in 17, every 17th.
    expect(gaps.length).toBeGreaterThanOrEqual(8);
    for (const gap of gaps) expect(gap).toBe(17);
  });
});
let lastList: PickCandidate[] = [];
