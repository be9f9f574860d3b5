import { assertKnownKeys, type Balancer, type OrcaLoadReport, type PickCandidate } from "@meshlite/core";
import { createEdfScheduler } from "./edf-scheduler.js";

/** Options of createWeightedRoundRobinBalancer (gRFC A58's, in milliseconds). */
export interface WeightedRoundRobinOptions {
  /** An endpoint's reports count only once it has reported for this long (its weight is the mean until then). Default 10000 ms. */
  blackoutPeriodMs?: number;
  /** An endpoint's weight lapses (back to the mean, and a new blackout) when it sent no usable report for this long. Default 180000 ms (3 min). */
  weightExpirationPeriodMs?: number;
  /** How often the weights are recomputed from the latest reports. Default 1000 ms, at least 100. */
  weightUpdatePeriodMs?: number;
  /** How much errors weigh: weight = qps / (utilization + eps / qps x this). Default 1. */
  errorUtilizationPenalty?: number;
  /** Source of randomness (the scheduler's start). Default Math.random. */
  random?: () => number;
  /** The clock, ms (the reports' `receivedAt` is performance.now()). Default performance.now. */
  now?: () => number;
}

const optionKeys = [
  "blackoutPeriodMs",
  "weightExpirationPeriodMs",
  "weightUpdatePeriodMs",
  "errorUtilizationPenalty",
  "random",
  "now",
];

/** What the balancer knows of one endpoint's reports. */
interface EndpointWeight {
  /** From the last usable report; 0 before one. */
  weight: number;
  /** When the first usable report of the current run arrived; NaN for none (no run, or it lapsed). */
  nonEmptySince: number;
  /** When the last usable report arrived; NaN for none. */
  lastUpdated: number;
  /** `receivedAt` of the last report looked at. */
  seen: number;
  /** When it was last among the candidates (state of endpoints gone for long is dropped). */
  present: number;
}

/**
 * The weight A58 gives a report: qps / (utilization + eps / qps x penalty),
 * utilization being `application_utilization` where the server reports it,
 * else `cpu_utilization`. 0 (unusable) without qps or utilization.
 */
export function reportWeight(report: OrcaLoadReport, errorUtilizationPenalty: number): number {
  const utilization = report.applicationUtilization > 0 ? report.applicationUtilization : report.cpuUtilization;
  const qps = report.rpsFractional;
  if (!(qps > 0) || !(utilization > 0)) return 0;
  const weight = qps / (utilization + (report.eps / qps) * errorUtilizationPenalty);
  return Number.isFinite(weight) ? weight : 0;
}

/**
 * Weighted round robin by the load servers report (ORCA, gRFC A58). Every
 * `weightUpdatePeriodMs` each endpoint's weight is recomputed from its
 * latest report (see reportWeight): a server that does the same work at half
 * the utilization gets twice the calls. A weight counts only after the
 * blackout period (so one early report cannot swing traffic) and lapses when
 * reports stop for the expiration period; endpoints without a weight get the
 * mean of the others (all equal when none has one: plain round robin). The
 * result is multiplied by the candidate's effective weight (endpoint
 * policies such as slow start), and calls follow an earliest-deadline-first
 * schedule over the weights. Servers report with `@meshlite/orca`, grpc-js's
 * metric recorder, or anything that sets the `endpoint-load-metrics-bin`
 * trailer or `endpoint-load-metrics` header.
 */
export function createWeightedRoundRobinBalancer(options: WeightedRoundRobinOptions = {}): Balancer {
  const api = "weighted-round-robin";
  assertKnownKeys(options, optionKeys, api);
  const blackout = options.blackoutPeriodMs ?? 10_000;
  const expiration = options.weightExpirationPeriodMs ?? 180_000;
  const updatePeriod = options.weightUpdatePeriodMs ?? 1000;
  const penalty = options.errorUtilizationPenalty ?? 1;
  for (const [name, value, min] of [
    ["blackoutPeriodMs", blackout, 0],
    ["weightExpirationPeriodMs", expiration, 1],
    ["weightUpdatePeriodMs", updatePeriod, 100],
    ["errorUtilizationPenalty", penalty, 0],
  ] as const) {
    if (typeof value !== "number" || !(value >= min) || !Number.isFinite(value)) {
      throw new RangeError(`${api}: ${name} must be a finite number >= ${min}, got ${String(value)}`);
    }
  }
  const random = options.random ?? Math.random;
  const clock = options.now ?? (() => performance.now());
  const states = new Map<string, EndpointWeight>();
  const scheduler = createEdfScheduler();
  let weights = new Float64Array(0);
  let current: readonly PickCandidate[] | undefined;
  let nextUpdate = Number.NEGATIVE_INFINITY;

  function stateOf(c: PickCandidate): EndpointWeight {
    let s = states.get(c.key);
    if (s === undefined) {
      s = { weight: 0, nonEmptySince: Number.NaN, lastUpdated: Number.NaN, seen: Number.NaN, present: 0 };
      states.set(c.key, s);
    }
    return s;
  }

  /** The weight an endpoint balances by now: 0 in blackout, lapsed or without reports. */
  function effective(c: PickCandidate, now: number): number {
    const s = stateOf(c);
    s.present = now;
    const load = c.load.serverLoad;
    if (load !== undefined && load.receivedAt !== s.seen) {
      s.seen = load.receivedAt;
      const w = reportWeight(load.report, penalty);
      if (w > 0) {
        if (Number.isNaN(s.nonEmptySince)) s.nonEmptySince = load.receivedAt;
        s.lastUpdated = load.receivedAt;
        s.weight = w;
      }
    }
    if (now - s.lastUpdated >= expiration) {
      s.nonEmptySince = Number.NaN;
      s.lastUpdated = Number.NaN;
      s.weight = 0;
    }
    return Number.isNaN(s.nonEmptySince) || now - s.nonEmptySince < blackout ? 0 : s.weight;
  }

  function update(candidates: readonly PickCandidate[], now: number) {
    const n = candidates.length;
    if (weights.length < n) weights = new Float64Array(n);
    let sum = 0;
    let counted = 0;
    for (let i = 0; i < n; i++) {
      const w = effective(candidates[i] as PickCandidate, now);
      weights[i] = w;
      if (w > 0) {
        sum += w;
        counted++;
      }
    }
    const mean = counted > 0 ? sum / counted : 1;
    for (let i = 0; i < n; i++) {
      weights[i] =
        ((weights[i] as number) > 0 ? (weights[i] as number) : mean) * (candidates[i] as PickCandidate).weight;
    }
    scheduler.reset(weights, n, random);
    current = candidates;
    nextUpdate = now + updatePeriod;
    if (states.size > n) {
      for (const [key, s] of states) if (now - s.present > expiration) states.delete(key);
    }
  }

  return {
    name: api,
    pick(candidates) {
      if (candidates.length === 1) return candidates[0];
      const now = clock();
      if (candidates !== current || now >= nextUpdate) update(candidates, now);
      return candidates[scheduler.next()];
    },
  };
}
