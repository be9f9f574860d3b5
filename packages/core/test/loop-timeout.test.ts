import { describe, expect, it } from "vitest";
import { acquireEventLoopStalls } from "../src/event-loop-stalls.js";
import { setLoopTimeout } from "../src/loop-timeout.js";

function blockFor(ms: number) {
  const until = performance.now() + ms;
  while (performance.now() < until) {}
}

describe("setLoopTimeout", () => {
  it("does not count the time the caller's loop was stalled", async () => {
    const stalls = acquireEventLoopStalls();
    try {
      // Let the monitor tick once, so the stall below is measured from a tick.
      await new Promise((r) => setTimeout(r, 50));
      const fired = new Promise<number>((resolve) => {
        setLoopTimeout(() => resolve(performance.now()), 200, stalls);
      });
      blockFor(600);
      const blockEnded = performance.now();
      const at = await fired;
      // A plain timer would fire right after the block; this one waits for
      // most of its 200 ms of loop time after it.
      expect(at - blockEnded).toBeGreaterThan(100);
      expect(stalls.stats().maxStallMs).toBeGreaterThan(400);
    } finally {
      stalls.release();
    }
  });

  it("fires on time on a loop that is not stalled, and not at all once cleared", async () => {
    const stalls = acquireEventLoopStalls();
    try {
      const start = performance.now();
      const at = await new Promise<number>((resolve) => setLoopTimeout(() => resolve(performance.now()), 100, stalls));
      expect(at - start).toBeGreaterThanOrEqual(99);
      let cleared = false;
      const t = setLoopTimeout(() => (cleared = true), 20, stalls);
      t.clear();
      await new Promise((r) => setTimeout(r, 100));
      expect(cleared).toBe(false);
    } finally {
      stalls.release();
    }
  });
});

describe("acquireEventLoopStalls", () => {
  it("reports a stall going on now, and the stalled part of a window", async () => {
    const stalls = acquireEventLoopStalls();
    try {
      await new Promise((r) => setTimeout(r, 50));
      const before = performance.now();
      blockFor(300);
      // The tick is overdue: the stall is seen before any timer ran.
      expect(stalls.stalledMs(before)).toBeGreaterThan(200);
      await new Promise((r) => setTimeout(r, 50));
      const after = performance.now();
      expect(stalls.stalledMs(before)).toBeGreaterThan(200);
      expect(stalls.stalledMs(after)).toBe(0);
    } finally {
      stalls.release();
    }
  });
});

describe("spannedStall", () => {
  it("is true for a window that spanned a stall, false for a fast call that ends while the loop catches up", async () => {
    const stalls = acquireEventLoopStalls();
    try {
      await new Promise((r) => setTimeout(r, 50));
      const before = performance.now();
      blockFor(200);
      // Started after the block, ended before any timer ran: 1 ms of call, no stall in it.
      const callStart = performance.now();
      blockFor(1);
      expect(stalls.spannedStall(callStart)).toBe(false);
      expect(stalls.spannedStall(before)).toBe(true);
    } finally {
      stalls.release();
    }
  });
});
