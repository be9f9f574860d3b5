import { assertKnownKeys } from "@meshlite/core";
import type { EndpointPolicy, PolicyHooks } from "./endpoint-policy.js";
import type { CallOutcome, Subchannel } from "./subchannel.js";

/** Passive outlier detection: eject endpoints whose calls keep failing. */
export interface OutlierDetectionOptions {
  /** Eject after this many failures in a row. Default 5. */
  consecutiveFailures?: number;
  /** First ejection time; the n-th ejection of the same endpoint lasts n times this. Default 30000 ms. */
  baseEjectionMs?: number;
  /** Upper bound of an ejection. Default 300000 ms. */
  maxEjectionMs?: number;
  /** Never eject more than this share of the endpoints, in percent. Default 50. */
  maxEjectionPercent?: number;
  /**
   * Failure-rate outliers: every `intervalMs`, endpoints with at least
   * `minimumCalls` calls whose success rate is below mean - `stdevFactor` x stdev
   * of all of them are ejected (needs at least 5 such endpoints: with fewer,
   * one outlier can never be 1.9 deviations from the mean). Default
   * { intervalMs: 10000, minimumCalls: 20, stdevFactor: 1.9 }; `false` turns it off.
   */
  failureRate?: { intervalMs?: number; minimumCalls?: number; stdevFactor?: number } | false;
  /**
   * When fewer than this share (percent) of the ready endpoints are not
   * ejected, ejections are ignored and every ready endpoint takes calls
   * (panic mode) rather than overloading the few left. Default 50.
   */
  panicThresholdPercent?: number;
}

export type ResolvedOutlierDetection = Required<Omit<OutlierDetectionOptions, "failureRate">> & {
  failureRate: { intervalMs: number; minimumCalls: number; stdevFactor: number } | false;
};

const outlierKeys = [
  "consecutiveFailures",
  "baseEjectionMs",
  "maxEjectionMs",
  "maxEjectionPercent",
  "failureRate",
  "panicThresholdPercent",
] as const;
const failureRateKeys = ["intervalMs", "minimumCalls", "stdevFactor"] as const;

/**
 * Checks the options and fills in the defaults. `where` names the option in
 * messages, with the API the user called: "createChannel: outlierDetection".
 */
export function resolveOutlierDetection(
  options: OutlierDetectionOptions | false | undefined,
  where: string,
): ResolvedOutlierDetection | false {
  if (options === false) return false;
  const o = options ?? {};
  if (typeof o !== "object" || o === null) {
    throw new TypeError(`${where} must be an object or false, got ${JSON.stringify(o)}`);
  }
  assertKnownKeys(o, outlierKeys, where);
  for (const [key, value] of Object.entries(o)) {
    if (key !== "failureRate" && !(typeof value === "number" && value >= 0 && Number.isFinite(value))) {
      throw new TypeError(`${where}.${key} must be a non-negative number, got ${String(value)}`);
    }
  }
  if (o.failureRate !== undefined && o.failureRate !== false) {
    if (typeof o.failureRate !== "object" || o.failureRate === null) {
      throw new TypeError(`${where}.failureRate must be an object or false, got ${JSON.stringify(o.failureRate)}`);
    }
    assertKnownKeys(o.failureRate, failureRateKeys, `${where}.failureRate`);
    for (const [key, value] of Object.entries(o.failureRate)) {
      if (!(typeof value === "number" && value >= 0 && Number.isFinite(value))) {
        throw new TypeError(`${where}.failureRate.${key} must be a non-negative number, got ${String(value)}`);
      }
    }
  }
  return {
    consecutiveFailures: o.consecutiveFailures ?? 5,
    baseEjectionMs: o.baseEjectionMs ?? 30_000,
    maxEjectionMs: o.maxEjectionMs ?? 300_000,
    maxEjectionPercent: o.maxEjectionPercent ?? 50,
    panicThresholdPercent: o.panicThresholdPercent ?? 50,
    failureRate:
      o.failureRate === false
        ? false
        : {
            intervalMs: o.failureRate?.intervalMs ?? 10_000,
            minimumCalls: o.failureRate?.minimumCalls ?? 20,
            stdevFactor: o.failureRate?.stdevFactor ?? 1.9,
          },
  };
}

/** How long the n-th ejection lasts. */
export function ejectionTime(options: ResolvedOutlierDetection, ejections: number): number {
  return Math.min(options.baseEjectionMs * ejections, options.maxEjectionMs);
}

/**
 * The endpoints among `rates` (success rates of endpoints with enough calls)
 * that are failure-rate outliers.
 */
export function failureRateOutliers<T>(rates: ReadonlyArray<[T, number]>, stdevFactor: number): T[] {
  if (rates.length < 5) return [];
  const mean = rates.reduce((s, [, r]) => s + r, 0) / rates.length;
  const variance = rates.reduce((s, [, r]) => s + (r - mean) ** 2, 0) / rates.length;
  const threshold = mean - stdevFactor * Math.sqrt(variance);
  return rates.filter(([, r]) => r < threshold).map(([t]) => t);
}

/** What outlier detection keeps per endpoint. */
interface OutlierState {
  consecutiveFailures: number;
  intervalCalls: number;
  intervalFailures: number;
  ejections: number;
  ejectedUntil: number;
}

/** Passive outlier detection as an endpoint policy, with what snapshots show of it. */
export interface OutlierDetector extends EndpointPolicy {
  /** Whether an endpoint is ejected now. */
  isEjected(subchannel: Subchannel): boolean;
  /** Times an endpoint was ejected (decays while it behaves). */
  ejections(subchannel: Subchannel): number;
}

/**
 * Ejects endpoints whose calls keep failing: after `consecutiveFailures` in a
 * row, or as a failure-rate outlier at the end of an interval. An ejection
 * lasts `baseEjectionMs` x the endpoint's ejections (at most `maxEjectionMs`);
 * at most `maxEjectionPercent` of the endpoints are out at once. The
 * endpoint returns by itself when its time is up.
 */
export function createOutlierDetector(options: ResolvedOutlierDetection, hooks: PolicyHooks): OutlierDetector {
  const states = new Map<Subchannel, OutlierState>();
  const timers = new Set<NodeJS.Timeout>();

  function stateOf(sc: Subchannel): OutlierState {
    let state = states.get(sc);
    if (state === undefined) {
      state = { consecutiveFailures: 0, intervalCalls: 0, intervalFailures: 0, ejections: 0, ejectedUntil: 0 };
      states.set(sc, state);
    }
    return state;
  }
  function isEjected(sc: Subchannel, now = performance.now()): boolean {
    return (states.get(sc)?.ejectedUntil ?? 0) > now;
  }

  function schedule(ms: number, fn: () => void) {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timer.unref();
    timers.add(timer);
  }

  function eject(sc: Subchannel, state: OutlierState, reason: "consecutive-failures" | "failure-rate") {
    if (isEjected(sc) || sc.draining) return;
    let all = 0;
    let ejectedNow = 0;
    for (const other of hooks.endpoints()) {
      all++;
      if (isEjected(other)) ejectedNow++;
    }
    if (((ejectedNow + 1) / all) * 100 > options.maxEjectionPercent) return;
    state.ejections++;
    const durationMs = ejectionTime(options, state.ejections);
    state.ejectedUntil = performance.now() + durationMs;
    state.consecutiveFailures = 0;
    hooks.logger.warn(`ejected endpoint ${sc.key} of ${hooks.target} for ${durationMs} ms (${reason})`);
    hooks.emit({ type: "endpoint-ejected", address: sc.key, reason, durationMs });
    hooks.changed();
    schedule(durationMs + 1, () => {
      if (!states.has(sc)) return;
      hooks.emit({ type: "endpoint-returned", address: sc.key });
      hooks.changed();
    });
  }

  function sweepFailureRates(minimumCalls: number, stdevFactor: number) {
    const rates: Array<[Subchannel, number]> = [];
    for (const sc of hooks.endpoints()) {
      const state = stateOf(sc);
      const { intervalCalls, intervalFailures } = state;
      if (intervalCalls >= minimumCalls) rates.push([sc, 1 - intervalFailures / intervalCalls]);
      state.intervalCalls = 0;
      state.intervalFailures = 0;
      // An endpoint that stayed out of trouble for a whole interval is forgiven one ejection.
      if (!isEjected(sc) && intervalFailures === 0 && state.ejections > 0) state.ejections--;
    }
    for (const sc of failureRateOutliers(rates, stdevFactor)) eject(sc, stateOf(sc), "failure-rate");
  }
  if (options.failureRate !== false) {
    const { intervalMs, minimumCalls, stdevFactor } = options.failureRate;
    const interval = setInterval(() => sweepFailureRates(minimumCalls, stdevFactor), intervalMs);
    interval.unref();
    timers.add(interval);
  }

  return {
    name: "outlier-ejection",
    select(candidates) {
      const now = performance.now();
      return candidates.some((sc) => isEjected(sc, now)) ? candidates.filter((sc) => !isEjected(sc, now)) : candidates;
    },
    onCallEnd(sc: Subchannel, outcome: CallOutcome) {
      const state = stateOf(sc);
      state.intervalCalls++;
      if (outcome.failure) {
        state.intervalFailures++;
        if (++state.consecutiveFailures >= options.consecutiveFailures) eject(sc, state, "consecutive-failures");
      } else if (outcome.ok) {
        state.consecutiveFailures = 0;
      }
    },
    onRemoved(sc) {
      states.delete(sc);
    },
    close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
    },
    isEjected: (sc) => isEjected(sc),
    ejections: (sc) => states.get(sc)?.ejections ?? 0,
  };
}
