// Overload signals against real backends on loopback: one of four backends
// answers half its calls with RESOURCE_EXHAUSTED in under a millisecond. Two
// channels over the same backends at the same time, one with the overload
// penalty (the default) and one without.
import { afterEach, describe, expect, it } from "vitest";
import { type BackendProcess, startBackendGroup } from "./support/backend-process.js";
import { runShedScenario } from "./support/warmup-scenarios.js";

let backends: BackendProcess[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.kill()));
  backends = [];
});

describe("overload signals", () => {
  it("sends a backend that sheds half its calls with RESOURCE_EXHAUSTED under 10% of calls, and fewer calls fail", async () => {
    backends = await startBackendGroup([1, 2, 3, 4].map((n) => `127.0.14.${10 + n}`));
    const [on, off] = await runShedScenario(backends, [
      { label: "overload penalty (default)", options: {} },
      { label: "overloadPenalty: false", options: { overloadPenalty: false } },
    ]);
    if (on === undefined || off === undefined) throw new Error("no result");
    const lines = [on, off].map(
      (r) =>
        `${r.label.padEnd(28)} share of calls to the shedding backend ${r.share.toFixed(1)}%, calls failed ${r.errorRate.toFixed(1)}% (of ${r.calls})`,
    );
    console.log(`one of four backends sheds 50% of its calls, 100 calls/s per channel\n${lines.join("\n")}`);
    expect(on.share, lines.join("\n")).toBeLessThan(10);
    // The error rate follows the share: half the calls it still gets fail.
    expect(on.errorRate, lines.join("\n")).toBeLessThan(6);
    expect(on.errorRate, lines.join("\n")).toBeLessThan(off.errorRate);
    expect(off.share, lines.join("\n")).toBeGreaterThan(on.share);
  });
});
