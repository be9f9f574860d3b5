import type { Balancer, PickCandidate } from "@meshlite/core";
import { twoDistinctIndexes } from "./random.js";
import { fewerInFlight, lessCalledFor } from "./weighted-load.js";

/** Options of createP2cBalancer. */
export interface P2cOptions {
  /**
   * Latency estimates that differ by no more than this fraction of the lower
   * one count as equal. Default 1: up to 2x.
   */
  tolerance?: number;
  /** Latency estimates that differ by no more than this many milliseconds count as equal. Default 1. */
  toleranceMs?: number;
  /**
   * Between endpoints whose latencies count as equal and that both report
   * their utilization (ORCA), a utilization lower by more than this wins
   * before calls in flight are compared. Default 0.1 (10 points); Infinity turns it off.
   */
  utilizationTolerance?: number;
  /** A load report older than this is not used. Default 10000 ms. */
  reportMaxAgeMs?: number;
  /** Source of randomness. Default Math.random. */
  random?: () => number;
  /** The clock the loads are read at, in ms. Default performance.now. */
  now?: () => number;
}

/**
 * Power of two choices (Finagle, Linkerd, tower): pick two distinct endpoints
 * at random and send the call to the better one.
 *
 * - When their latency estimates differ clearly (by more than the tolerance,
 *   2x or 1 ms by default), the lower peak-EWMA cost wins: latency x (pending
 *   calls + 1) / weight. A slow, failing or overloaded endpoint gets few calls
 *   within a few calls; the random pair keeps a little traffic on it so its
 *   recovery is noticed. (When the faster one has the lower weight, the
 *   weights decide, as below: see choose().)
 * - Otherwise they count as equal (equal pods are never exactly equal: a GC
 *   pause or a late timer puts one a little ahead, and a strict comparison
 *   would send it every call of every pair it is drawn into). The one with
 *   fewer calls in flight wins (per weight: with the call, it must still have
 *   no more per weight than the other), then the one with the lower recent
 *   call rate per weight, so equal endpoints get equal shares at any load,
 *   shares follow effective weights (a weight of 0.1 gets about a tenth of
 *   an equal endpoint's calls), a new one takes its share as soon as it is
 *   ready, and one that was passed over for a moment catches up.
 *   Before that, when both report their load (ORCA, within the last 10 s),
 *   the one whose utilization (`application_utilization`, else
 *   `cpu_utilization`) is lower by more than 0.1 wins: a pod that answers as
 *   fast but is busier is spared.
 *
 * The load itself (latency estimate, failure penalty, call rate) is measured
 * by the channel: see `loadOptions` of createChannel.
 */
export function createP2cBalancer(options: P2cOptions = {}): Balancer {
  const random = options.random ?? Math.random;
  const clock = options.now ?? (() => performance.now());
  const tolerance = options.tolerance ?? 1;
  const toleranceMs = options.toleranceMs ?? 1;
  const utilizationTolerance = options.utilizationTolerance ?? 0.1;
  const reportMaxAgeMs = options.reportMaxAgeMs ?? 10_000;
  if (!(utilizationTolerance >= 0) || !(reportMaxAgeMs >= 0)) {
    throw new RangeError(
      `p2c: utilizationTolerance and reportMaxAgeMs must be numbers >= 0, got ${String(utilizationTolerance)} and ${String(reportMaxAgeMs)}`,
    );
  }
  /** The endpoint's reported utilization, -1 without a recent report that has one. */
  function utilization(c: PickCandidate, now: number): number {
    const load = c.load.serverLoad;
    if (load === undefined || now - load.receivedAt > reportMaxAgeMs) return -1;
    const { applicationUtilization: app, cpuUtilization: cpu } = load.report;
    return app > 0 ? app : cpu > 0 ? cpu : -1;
  }
  if (!(tolerance >= 0) || !(toleranceMs >= 0)) {
    throw new RangeError(
      `p2c: tolerance and toleranceMs must be numbers >= 0, got ${String(tolerance)} and ${String(toleranceMs)}`,
    );
  }
  function choose(a: PickCandidate, b: PickCandidate): PickCandidate {
    const now = clock();
    // The effective weight, as the endpoint policies set it.
    const wa = a.weight;
    const wb = b.weight;
    const la = a.load.latencyMs(now);
    const lb = b.load.latencyMs(now);
    const gap = Math.abs(la - lb);
    // A clearly faster endpoint wins by cost, unless it has the lower weight:
    // a low-weight endpoint (one ramping up in slow start) gets few calls, and
    // an estimate left without samples decays, so it would look faster for
    // being idle and then lose every pair on cost / weight (starved). Its
    // share follows its weight below instead; a clearly slower one still loses.
    if (gap > Math.min(la, lb) * tolerance && gap > toleranceMs && (la < lb ? wa >= wb : wb >= wa)) {
      return (lb * (b.load.pending + 1)) / wb < (la * (a.load.pending + 1)) / wa ? b : a;
    }
    if (utilizationTolerance !== Number.POSITIVE_INFINITY) {
      const ua = utilization(a, now);
      const ub = utilization(b, now);
      if (ua >= 0 && ub >= 0 && Math.abs(ua - ub) > utilizationTolerance) return ub < ua ? b : a;
    }
    return fewerInFlight(a, b) ?? lessCalledFor(a, b, now);
  }
  return {
    name: "p2c",
    pick(ready) {
      if (ready.length === 1) return ready[0];
      const [i, j] = twoDistinctIndexes(ready.length, random);
      return choose(ready[i] as PickCandidate, ready[j] as PickCandidate);
    },
  };
}
