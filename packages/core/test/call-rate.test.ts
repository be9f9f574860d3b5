import { describe, expect, it } from "vitest";
import { createCallRate } from "../src/index.js";

describe("createCallRate", () => {
  it("reads a steady rate of calls per second", () => {
    const r = createCallRate({}, 0);
    for (let t = 40; t <= 20_000; t += 40) r.record(t);
    expect(r.rate(20_000)).toBeCloseTo(25, 0);
  });

  it("measures a new endpoint over its short life: level with an old one, no burst owed", () => {
    const old = createCallRate({}, 0);
    for (let t = 40; t <= 20_000; t += 40) old.record(t);
    const young = createCallRate({}, 20_000);
    for (let t = 20_040; t <= 20_400; t += 40) {
      young.record(t);
      old.record(t);
    }
    expect(young.rate(20_400) / old.rate(20_400)).toBeGreaterThan(0.7);
    expect(young.rate(20_400) / old.rate(20_400)).toBeLessThan(1.3);
  });

  it("forgets calls over a few windows", () => {
    const r = createCallRate({ windowMs: 2000 }, 0);
    for (let t = 40; t <= 10_000; t += 40) r.record(t);
    expect(r.rate(10_000 + 6000)).toBeLessThan(25 * 0.06);
    expect(createCallRate({}, 0).rate(1000)).toBe(0);
  });
});
