import { describe, expect, it } from "vitest";
import { createBackoff } from "../src/index.js";

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
