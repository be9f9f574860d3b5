import { describe, expect, it } from "vitest";
import { createPeakEwma } from "../src/index.js";

/** Feeds `count` samples of `ms`, `gapMs` apart from `from`; returns the time after the last. */
function feed(e: ReturnType<typeof createPeakEwma>, ms: number, count: number, gapMs: number, from: number): number {
  let t = from;
  for (let i = 0; i < count; i++) {
    t += gapMs;
    e.observe(ms, t);
  }
  return t;
}

/** Records `count` failures of 0.3 ms, 5 ms apart from `from`; returns the time after the last and the highest estimate. */
function fail(e: ReturnType<typeof createPeakEwma>, count: number, from: number) {
  let t = from;
  let highest = 0;
  for (let i = 0; i < count; i++) {
    t += 5;
    e.observeFailure(0.3, t);
    highest = Math.max(highest, e.estimate(t));
  }
  return { t, highest };
}

describe("createPeakEwma", () => {
  it("converges from a starting estimate 15x off within a handful of samples, at any call rate", () => {
    for (const gapMs of [5, 40, 200]) {
      const e = createPeakEwma({ defaultMs: 30 }, 0);
      const t = feed(e, 2, 8, gapMs, 0);
      // Within 1.5x of the calls: inside p2c's default tolerance of the others.
      expect(e.estimate(t), `${gapMs} ms apart`).toBeGreaterThan(2 / 1.5);
      expect(e.estimate(t), `${gapMs} ms apart`).toBeLessThan(2 * 1.5);
    }
  });

  it("is not thrown by a lone slow call", () => {
    const e = createPeakEwma({}, 0);
    let t = feed(e, 2, 30, 40, 0);
    t = feed(e, 100, 1, 40, t);
    expect(e.estimate(t)).toBeLessThan(2 * 2);
    t = feed(e, 2, 5, 40, t);
    expect(e.estimate(t)).toBeLessThan(2 * 1.5);
  });

  it("catches a slow endpoint by its third call and holds its latency", () => {
    const e = createPeakEwma({}, 0);
    let t = feed(e, 2, 30, 40, 0);
    t = feed(e, 35, 3, 40, t);
    // Outside p2c's default tolerance (2x + 1 ms) of its 2 ms peers: it gets no more calls.
    expect(e.estimate(t)).toBeGreaterThan(2 * 2 + 1);
    t = feed(e, 35, 2, 40, t);
    expect(e.estimate(t)).toBeGreaterThan(30);
  });

  it("after an idle spell, keeps a slow endpoint apart from the first sample on", () => {
    // A channel idle for 4 s: every estimate decayed about 50x, the slow one's and its peers' alike.
    const slow = createPeakEwma({ decayMs: 1000 }, 0);
    const peer = createPeakEwma({ decayMs: 1000 }, 0);
    const t = feed(slow, 35, 10, 40, 0);
    feed(peer, 2, 10, 40, 0);
    slow.observe(35, t + 4000);
    peer.observe(2, t + 4000);
    // Not the 4x climb per sample of a fresh estimate: the stale one gives way to what is measured now.
    expect(slow.estimate(t + 4000)).toBeGreaterThan(25);
    expect(peer.estimate(t + 4000)).toBeLessThan(3);
  });

  it("decays towards zero while no sample arrives, so avoided endpoints get tried again", () => {
    const e = createPeakEwma({ decayMs: 1000 }, 0);
    feed(e, 35, 5, 40, 0);
    expect(e.estimate(200)).toBeGreaterThan(30);
    expect(e.estimate(200 + 2000)).toBeLessThan(35 / 5);
  });

  it("tries a persistently slow endpoint again less and less often (up to 4x the decay), and a recovered one at once", () => {
    // Its peers take 2 ms.
    const e = createPeakEwma({ decayMs: 1000 }, 0, () => 2);
    let t = feed(e, 35, 10, 40, 0);
    /** When p2c would try it again beside 2 ms peers (within its default 2x + 1 ms), in 10 ms steps. */
    const nextProbe = (from: number) => {
      let at = from;
      while (e.estimate(at) > 2 * 2 + 1) at += 10;
      return at;
    };
    const gaps: number[] = [];
    for (let probe = 0; probe < 5; probe++) {
      const at = nextProbe(t);
      gaps.push(at - t);
      // Still 35 ms: the call that probes it (and the two that follow in a row) say so.
      e.observe(35, at);
      t = feed(e, 35, 2, 5, at);
    }
    console.log(`re-probes of an endpoint that stays 35 ms slower: ${gaps.map((g) => `${g} ms`).join(", ")} apart`);
    // About 2 s, then twice that each time, up to four times the first gap.
    expect(gaps[1]).toBeGreaterThan(1.8 * (gaps[0] as number));
    expect(gaps[2]).toBeGreaterThan(1.8 * (gaps[1] as number));
    expect(gaps[4]).toBeLessThan(4.5 * (gaps[0] as number));
    // It recovers: the probe measures 2 ms, and from then on it decays at the normal pace again.
    const at = nextProbe(t);
    t = feed(e, 2, 3, 40, at);
    t = feed(e, 35, 5, 40, t);
    expect(nextProbe(t) - t).toBeLessThan(1.2 * (gaps[0] as number));
  });

  it("keeps the normal decay for an endpoint that gets faster try by try (a new pod warming up)", () => {
    const e = createPeakEwma({ decayMs: 1000 }, 0, () => 2);
    let t = feed(e, 40, 10, 40, 0);
    const gaps: number[] = [];
    for (const ms of [30, 22, 16, 12]) {
      let at = t;
      while (e.estimate(at) > 2 * 2 + 1) at += 10;
      gaps.push(at - t);
      t = feed(e, ms, 3, 5, at);
    }
    // Each try finds it a quarter faster: no backoff, so it is tried as often as at first.
    expect(Math.max(...gaps)).toBeLessThan(1.2 * (gaps[0] as number));
  });

  it("keeps the normal decay for an endpoint that is as fast as its peers when tried again", () => {
    // Its peers take 3 ms; it was held at 4 ms (a noisy moment) and is tried again at 3 ms, and again.
    const e = createPeakEwma({ decayMs: 1000 }, 0, () => 3);
    let t = feed(e, 4, 10, 40, 0);
    const decayOver = (from: number) => e.estimate(from) / e.estimate(from + 1000);
    for (let probe = 0; probe < 3; probe++) t = feed(e, 3.5, 1, 1500, t);
    // e: the decay of 1000 ms, not slowed down.
    expect(decayOver(t)).toBeCloseTo(Math.E, 1);
  });

  it("tries a failing endpoint again less and less often too", () => {
    const e = createPeakEwma({ decayMs: 1000 }, 0);
    let t = feed(e, 2, 30, 40, 0);
    const gaps: number[] = [];
    for (let probe = 0; probe < 3; probe++) {
      e.observeFailure(0.3, t);
      let at = t;
      while (e.estimate(at) > 2 * 2 + 1) at += 10;
      gaps.push(at - t);
      t = at;
    }
    expect(gaps[1]).toBeGreaterThan(1.8 * (gaps[0] as number));
    expect(gaps[2]).toBeGreaterThan(1.5 * (gaps[1] as number));
  });

  it("leaves a failing endpoint at its first failure, and twenty in a row stay bounded", () => {
    const e = createPeakEwma({}, 0);
    const t = feed(e, 2, 30, 40, 0);
    const healthy = e.estimate(t);
    const first = fail(e, 1, t);
    expect(first.highest).toBeGreaterThanOrEqual(10 * healthy * 0.99);
    const { highest } = fail(e, 19, first.t);
    console.log(
      `20 failures in a row on a ${healthy.toFixed(2)} ms endpoint: estimate at most ${highest.toFixed(1)} ms`,
    );
    // Doubling without a ceiling (as before) would reach 2^20 times.
    expect(highest).toBeLessThanOrEqual(100 * healthy);
  });

  it("brings a recovered endpoint back within seconds of twenty failures", () => {
    const e = createPeakEwma({}, 0);
    const measured = feed(e, 2, 30, 40, 0);
    const healthy = e.estimate(measured);
    let { t } = fail(e, 20, measured);
    // Avoided, it gets no calls: the decay alone brings it within p2c's default tolerance
    // (2x + 1 ms) of its healthy peers...
    const back = 5000;
    expect(e.estimate(t + back)).toBeLessThan(2 * healthy + 1);
    // ...and its first successful calls take it back to its latency.
    t = feed(e, 2, 5, 40, t + back);
    expect(e.estimate(t)).toBeLessThan(2 * 1.5);
  });

  it("rejects a decay that is not positive", () => {
    expect(() => createPeakEwma({ decayMs: 0 })).toThrow(/decayMs must be > 0/);
  });
});
