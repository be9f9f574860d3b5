// Slow start against real backends on loopback: a backend that is slow for
// its first 10 s (+40 ms, falling to 0) joins four warm ones under open-loop
// load. Three channels over the same backends at the same time: one with slow
// start, one without, and a control that stays on the four warm backends (its
// p99 is the steady p99), so all see the same cold pod and the same noise.
import { afterEach, describe, expect, it } from "vitest";
import { type BackendProcess, startBackendGroup } from "./support/backend-process.js";
import { runJoinScenario } from "./support/warmup-scenarios.js";

let backends: BackendProcess[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.kill()));
  backends = [];
});

describe("slow start", () => {
  it("ramps a cold backend's share over the window and keeps the p99 within 1.5x of the steady p99", async () => {
    backends = await startBackendGroup([1, 2, 3, 4, 5].map((n) => `127.0.14.${n}`));
    const [on, off, steady] = await runJoinScenario(backends, [
      { label: "slow start (10 s window)", options: { slowStart: { windowMs: 10_000 } } },
      { label: "no slow start", options: { slowStart: false } },
      { label: "steady (4 warm only)", options: {}, join: false },
    ]);
    if (on === undefined || off === undefined || steady === undefined) throw new Error("no result");
    const lines = [on, off, steady].map(
      (r) =>
        `${r.label.padEnd(26)} p99 ${r.windowP99.toFixed(1)} ms (${(r.windowP99 / steady.windowP99).toFixed(2)}x steady), cold backend's share by 2 s: ${r.shares.map((s) => `${s.toFixed(1)}%`).join(" ")}, its weight: ${r.weights.map((w) => w.toFixed(2)).join(" ")}`,
    );
    console.log(
      `a cold backend (+40 ms falling to 0 over 10 s) joins four warm ones, 100 calls/s\n${lines.join("\n")}`,
    );
    expect(on.errors + off.errors + steady.errors).toBe(0);
    // 2 ms of slack: a p99 of 2-4 ms on a busy machine moves by that much on its own.
    expect(on.windowP99, lines.join("\n")).toBeLessThanOrEqual(1.5 * steady.windowP99 + 2);
    // The ramp: its weight rises from the 10% floor to the full weight over the window...
    expect(on.weights.length, lines[0]).toBeGreaterThanOrEqual(3);
    expect(on.weights[0], lines[0]).toBeLessThan(0.25);
    // (Never down; two looks right after a stalled event loop may see the same step.)
    for (let k = 1; k < on.weights.length; k++) {
      expect(on.weights[k], lines[0]).toBeGreaterThanOrEqual(on.weights[k - 1] as number);
    }
    expect(on.weights.at(-1), lines[0]).toBeGreaterThan(0.5);
    // ...its share in the first 2 s stays within what a weight up to 0.2 allows
    // (0.2 / 4.2 of the calls, plus noise), and it rises later (p2c also
    // weighs its latency, so how far depends on how slow it still is).
    expect(on.shares[0], lines[0]).toBeLessThan(7);
    expect(Math.max(...on.shares.slice(1)), lines[0]).toBeGreaterThan(on.shares[0] as number);
  });
});
