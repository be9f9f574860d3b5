import { describe, expect, it } from "vitest";
import { createBackoff, createPeakEwma } from "../src/index.js";

describe("createBackoff", () => {
  it("follows gRPC's connection backoff: 1 s, x1.6, 120 s cap, +-20% jitter", () => {
    const exact = createBackoff({}, () => 0.5);
    const delays = Array.from({ length: 14 }, () => exact.next());
    expect(delays.slice(0, 4)).toEqual([1000, 1600, 2560, 4096]);
    expect(delays.at(-1)).toBe(120_000);
    const low = createBackoff({}, () => 0);
    const high = createBackoff({}, () => 0.999999);
    expect(low.next()).toBe(800);
    expect(high.next()).toBe(1200);
  });

  it("starts over after reset", () => {
    const b = createBackoff({}, () => 0.5);
    b.next();
    b.next();
    b.reset();
    expect(b.next()).toBe(1000);
  });
});

describe("createPeakEwma", () => {
  it("starts at the default, jumps to a higher sample and decays lower ones over time", () => {
    const e = createPeakEwma({ defaultMs: 30, decayMs: 10_000 });
    expect(e.estimate(0)).toBeCloseTo(30, 0);
    e.observe(200, 1000);
    expect(e.estimate(1000)).toBe(200);
    // A low sample right after barely moves it; the same sample after a long gap dominates.
    e.observe(10, 1001);
    expect(e.estimate(1001)).toBeGreaterThan(190);
    e.observe(10, 60_000);
    expect(e.estimate(60_000)).toBeLessThan(15);
  });

  it("decays towards zero while no sample arrives, so avoided endpoints get tried again", () => {
    const e = createPeakEwma({ decayMs: 1000 });
    e.observe(100, 0);
    expect(e.estimate(5000)).toBeLessThan(1);
  });
});
