import { describe, expect, it } from "vitest";
import { createOverloadPenalty } from "../src/index.js";

describe("createOverloadPenalty", () => {
  it("adds factor x the estimate per overload answer, bounded, and decays while no calls come", () => {
    const p = createOverloadPenalty({ factor: 10, decayMs: 1000 });
    expect(p.value(0)).toBe(0);
    p.record(2, 0);
    expect(p.value(0)).toBe(20);
    p.record(2, 0);
    expect(p.value(0)).toBe(40);
    for (let i = 0; i < 50; i++) p.record(2, 0);
    expect(p.value(0)).toBe(200);
    expect(p.value(1000)).toBeCloseTo(200 / Math.E);
    expect(p.value(30_000)).toBe(0);
  });

  it("takes at least 1 ms as the estimate, and a longer pushback as the penalty", () => {
    const p = createOverloadPenalty({ factor: 10 });
    p.record(0.05, 0);
    expect(p.value(0)).toBe(10);
    const q = createOverloadPenalty({ factor: 10 });
    q.record(1, 0, 500);
    expect(q.value(0)).toBe(500);
  });

  it("halves with each successful call", () => {
    const p = createOverloadPenalty({ factor: 10, decayMs: 1_000_000 });
    p.record(4, 0);
    p.relieve(0);
    expect(p.value(0)).toBeCloseTo(20);
    p.relieve(0);
    expect(p.value(0)).toBeCloseTo(10);
  });

  it("rejects bad options", () => {
    expect(() => createOverloadPenalty({ decayMs: 0 })).toThrow("decayMs a number > 0");
    expect(() => createOverloadPenalty({ factor: -1 })).toThrow("factor must be a number >= 0");
  });
});
