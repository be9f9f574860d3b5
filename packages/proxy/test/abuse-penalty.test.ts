import { describe, expect, it } from "vitest";
import { createAbusePenalties } from "../src/abuse-penalty.js";

function clock() {
  let t = 0;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

describe("abuse penalties", () => {
  it("refuse an address for baseMs after its first offence, and only that address", () => {
    const c = clock();
    const penalties = createAbusePenalties({ baseMs: 1000, now: c.now });
    expect(penalties.refuses("10.0.0.1")).toBe(false);
    penalties.penalize("10.0.0.1");
    expect(penalties.refuses("10.0.0.1")).toBe(true);
    expect(penalties.refuses("10.0.0.2")).toBe(false);
    c.advance(999);
    expect(penalties.refuses("10.0.0.1")).toBe(true);
    c.advance(1);
    expect(penalties.refuses("10.0.0.1")).toBe(false);
  });

  it("double the refusal for each repeat, up to 32x, and forget an address that stayed clean", () => {
    const c = clock();
    const penalties = createAbusePenalties({ baseMs: 100, forgetAfterMs: 10_000, now: c.now });
    const refusedFor = () => {
      let ms = 0;
      while (penalties.refuses("10.0.0.1")) {
        c.advance(10);
        ms += 10;
      }
      return ms;
    };
    const spans = Array.from({ length: 8 }, () => {
      penalties.penalize("10.0.0.1");
      return refusedFor();
    });
    expect(spans).toEqual([100, 200, 400, 800, 1600, 3200, 3200, 3200]);
    c.advance(10_001);
    penalties.penalize("10.0.0.1");
    expect(refusedFor()).toBe(100);
  });

  it("remember at most maxAddresses, dropping the one that offended longest ago", () => {
    const c = clock();
    const penalties = createAbusePenalties({ baseMs: 1000, maxAddresses: 2, now: c.now });
    penalties.penalize("a");
    penalties.penalize("b");
    penalties.penalize("a"); // a repeat makes "a" the latest
    penalties.penalize("c");
    expect([penalties.refuses("a"), penalties.refuses("b"), penalties.refuses("c")]).toEqual([true, false, true]);
  });

  it("do nothing when baseMs is 0", () => {
    const penalties = createAbusePenalties({ baseMs: 0 });
    penalties.penalize("10.0.0.1");
    expect(penalties.refuses("10.0.0.1")).toBe(false);
  });
});
