import { emptyOrcaLoadReport, type OrcaLoadReport, type PickCandidate, type ServerLoad } from "@meshlite/core";
import { describe, expect, it } from "vitest";
import { createEdfScheduler } from "../src/edf-scheduler.js";
import { createWeightedRoundRobinBalancer, reportWeight } from "../src/index.js";

interface Fake extends PickCandidate {
  serverLoad: ServerLoad | undefined;
}

function endpoints(n: number): Fake[] {
  return Array.from({ length: n }, (_, i) => {
    const fake = {
      key: `10.0.0.${i}:80`,
      hashKey: `10.0.0.${i}:80`,
      endpoint: { host: `10.0.0.${i}`, port: 80 },
      weight: 1,
    } as Fake;
    (fake as { load: PickCandidate["load"] }).load = {
      inFlight: 0,
      pending: 0,
      latencyMs: () => 1,
      callRate: () => 0,
      get serverLoad() {
        return fake.serverLoad;
      },
    };
    return fake;
  });
}

const report = (fields: Partial<OrcaLoadReport>): OrcaLoadReport => ({ ...emptyOrcaLoadReport(), ...fields });

function shares(pick: () => PickCandidate | undefined, times: number): number[] {
  const counts = new Map<string, number>();
  for (let i = 0; i < times; i++) {
    const c = pick() as PickCandidate;
    counts.set(c.key, (counts.get(c.key) ?? 0) + 1);
  }
  return [...Array(counts.size).keys()].map((i) => (counts.get(`10.0.0.${i}:80`) ?? 0) / times);
}

describe("reportWeight (A58)", () => {
  it("is qps / (utilization + eps / qps x penalty), application utilization before CPU", () => {
    expect(reportWeight(report({ rpsFractional: 100, cpuUtilization: 0.5 }), 1)).toBe(200);
    expect(reportWeight(report({ rpsFractional: 100, cpuUtilization: 0.5, applicationUtilization: 0.25 }), 1)).toBe(
      400,
    );
    // 10 errors/s at 100 qps add 0.1 x penalty to the utilization.
    expect(reportWeight(report({ rpsFractional: 100, cpuUtilization: 0.4, eps: 10 }), 1)).toBeCloseTo(200);
    expect(reportWeight(report({ rpsFractional: 100, cpuUtilization: 0.4, eps: 10 }), 0)).toBeCloseTo(250);
    // Without qps or utilization the report is not usable.
    expect(reportWeight(report({ cpuUtilization: 0.5 }), 1)).toBe(0);
    expect(reportWeight(report({ rpsFractional: 10 }), 1)).toBe(0);
  });
});

describe("the EDF scheduler", () => {
  it("gives each entry its weight's share, interleaved", () => {
    const s = createEdfScheduler();
    s.reset(Float64Array.from([1, 2, 3, 4]), 4, () => 0.5);
    const counts = [0, 0, 0, 0];
    const first20: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      const n = s.next();
      counts[n] = (counts[n] as number) + 1;
      if (i < 20) first20.push(n);
    }
    expect(counts).toEqual([1000, 2000, 3000, 4000]);
    // Never a long run of the heaviest: at most 2 in a row at weight 4 of 10.
    expect(first20.join("")).not.toMatch(/3{3}/);
  });
});

describe("weighted-round-robin", () => {
  function setUp(options: Parameters<typeof createWeightedRoundRobinBalancer>[0] = {}) {
    let now = 0;
    const list = endpoints(4);
    const b = createWeightedRoundRobinBalancer({ now: () => now, ...options });
    const call = { method: "", header: () => undefined };
    return {
      list,
      pick: () => b.pick(list, call),
      advance(ms: number) {
        now += ms;
      },
      /** Each endpoint reports, at the current time. */
      reportAll(util: (i: number) => number) {
        list.forEach((c, i) => {
          c.serverLoad = { report: report({ rpsFractional: 100, applicationUtilization: util(i) }), receivedAt: now };
        });
      },
    };
  }

  it("is round robin without reports", () => {
    const t = setUp();
    expect(shares(t.pick, 4000)).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it("gives an endpoint at half the utilization twice the calls, after the blackout period", () => {
    const t = setUp();
    t.reportAll((i) => (i === 0 ? 0.25 : 0.5));
    t.pick();
    t.advance(5000);
    t.reportAll((i) => (i === 0 ? 0.25 : 0.5));
    // Still in blackout (reports for 5 s of 10): equal.
    expect(shares(t.pick, 4000)).toEqual([0.25, 0.25, 0.25, 0.25]);
    t.advance(5000);
    t.reportAll((i) => (i === 0 ? 0.25 : 0.5));
    expect(shares(t.pick, 5000)).toEqual([0.4, 0.2, 0.2, 0.2]);
  });

  it("gives an endpoint without reports the mean weight", () => {
    const t = setUp({ blackoutPeriodMs: 0 });
    t.reportAll((i) => (i === 0 ? 0.25 : 0.5));
    (t.list[3] as Fake).serverLoad = undefined;
    t.pick();
    // Weights 400, 200, 200 and the mean 266.7 for the silent one.
    const [a, b, c, d] = shares(t.pick, 10_666);
    expect(a).toBeCloseTo(0.375, 2);
    expect(b).toBeCloseTo(0.1875, 2);
    expect(c).toBeCloseTo(0.1875, 2);
    expect(d).toBeCloseTo(0.25, 2);
  });

  it("lets weights lapse back to equal when reports stop for the expiration period", () => {
    const t = setUp({ blackoutPeriodMs: 1000, weightExpirationPeriodMs: 5000, weightUpdatePeriodMs: 100 });
    t.reportAll((i) => (i === 0 ? 0.25 : 0.5));
    t.pick();
    t.advance(1000);
    t.reportAll((i) => (i === 0 ? 0.25 : 0.5));
    expect(shares(t.pick, 5000)[0]).toBe(0.4);
    t.advance(4500);
    expect(shares(t.pick, 5000)[0]).toBe(0.4);
    t.advance(600);
    expect(shares(t.pick, 4000)).toEqual([0.25, 0.25, 0.25, 0.25]);
    // Reports resume: a new blackout before they count again.
    t.reportAll((i) => (i === 0 ? 0.25 : 0.5));
    t.advance(500);
    expect(shares(t.pick, 4000)).toEqual([0.25, 0.25, 0.25, 0.25]);
    t.reportAll((i) => (i === 0 ? 0.25 : 0.5));
    t.advance(600);
    expect(shares(t.pick, 5000)[0]).toBe(0.4);
  });

  it("multiplies by the effective weight the endpoint policies set", () => {
    const t = setUp();
    (t.list[1] as { weight: number }).weight = 3;
    expect(shares(t.pick, 6000)).toEqual([1 / 6, 0.5, 1 / 6, 1 / 6]);
  });

  it("rejects bad options with what is accepted", () => {
    expect(() => createWeightedRoundRobinBalancer({ weightUpdatePeriodMs: 10 })).toThrow(
      "weighted-round-robin: weightUpdatePeriodMs must be a finite number >= 100, got 10",
    );
    expect(() => createWeightedRoundRobinBalancer({ errorUtilizationPenalty: -1 })).toThrow(
      "errorUtilizationPenalty must be a finite number >= 0",
    );
    expect(() => createWeightedRoundRobinBalancer({ blackoutPeriod: 1 } as never)).toThrow(
      'weighted-round-robin: unknown key "blackoutPeriod" (did you mean "blackoutPeriodMs"?)',
    );
  });
});
