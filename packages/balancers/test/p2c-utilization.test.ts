import { emptyOrcaLoadReport, type PickCandidate, type ServerLoad } from "@meshlite/core";
import { describe, expect, it } from "vitest";
import { createP2cBalancer } from "../src/index.js";

/** Two endpoints of equal latency and calls in flight; `utilization` is what each reports (undefined: no report). */
function pair(utilization: [number | undefined, number | undefined], latency: [number, number] = [5, 5], age = 0) {
  return utilization.map((u, i): PickCandidate => {
    const serverLoad: ServerLoad | undefined =
      u === undefined
        ? undefined
        : { report: { ...emptyOrcaLoadReport(), applicationUtilization: u }, receivedAt: 100_000 - age };
    return {
      key: `10.0.0.${i}:80`,
      hashKey: `10.0.0.${i}:80`,
      endpoint: { host: `10.0.0.${i}`, port: 80 },
      weight: 1,
      load: {
        inFlight: i === 0 ? 0 : 1,
        pending: 0,
        latencyMs: () => latency[i] as number,
        callRate: () => 0,
        serverLoad,
      },
    };
  });
}

const call = { method: "", header: () => undefined };
const picked = (candidates: PickCandidate[], options = {}) =>
  createP2cBalancer({ now: () => 100_000, ...options }).pick(candidates, call)?.key;

describe("p2c with ORCA reports", () => {
  it("prefers the endpoint that reports a clearly lower utilization among equally fast ones", () => {
    // Without reports, fewer calls in flight wins: endpoint 0.
    expect(picked(pair([undefined, undefined]))).toBe("10.0.0.0:80");
    // Endpoint 0 is at 90%, endpoint 1 at 30%: endpoint 1, despite its call in flight.
    expect(picked(pair([0.9, 0.3]))).toBe("10.0.0.1:80");
    // Within 0.1 of each other: as without reports.
    expect(picked(pair([0.35, 0.3]))).toBe("10.0.0.0:80");
    // Only one reports: as without reports.
    expect(picked(pair([0.9, undefined]))).toBe("10.0.0.0:80");
    // A report older than reportMaxAgeMs is not used.
    expect(picked(pair([0.9, 0.3], [5, 5], 20_000))).toBe("10.0.0.0:80");
    // Turned off.
    expect(picked(pair([0.9, 0.3]), { utilizationTolerance: Number.POSITIVE_INFINITY })).toBe("10.0.0.0:80");
  });

  it("still lets clearly lower latency win first", () => {
    // Endpoint 0 is at 90% but 10x faster: latency decides.
    expect(picked(pair([0.9, 0.3], [1, 10]))).toBe("10.0.0.0:80");
  });

  it("rejects a negative tolerance", () => {
    expect(() => createP2cBalancer({ utilizationTolerance: -1 })).toThrow(
      "p2c: utilizationTolerance and reportMaxAgeMs must be numbers >= 0, got -1 and 10000",
    );
  });
});
