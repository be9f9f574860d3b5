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

/** The per-endpoint state outlier detection keeps. */
export interface OutlierState {
  consecutiveFailures: number;
  intervalCalls: number;
  intervalFailures: number;
  ejections: number;
  ejectedUntil: number;
}

export function createOutlierState(): OutlierState {
  return { consecutiveFailures: 0, intervalCalls: 0, intervalFailures: 0, ejections: 0, ejectedUntil: 0 };
}

export type ResolvedOutlierDetection = Required<Omit<OutlierDetectionOptions, "failureRate">> & {
  failureRate: { intervalMs: number; minimumCalls: number; stdevFactor: number } | false;
};

export function resolveOutlierDetection(
  options: OutlierDetectionOptions | false | undefined,
): ResolvedOutlierDetection | false {
  if (options === false) return false;
  const o = options ?? {};
  for (const [key, value] of Object.entries(o)) {
    if (key !== "failureRate" && !(typeof value === "number" && value >= 0 && Number.isFinite(value))) {
      throw new TypeError(`createChannel: outlierDetection.${key} must be a non-negative number, got ${String(value)}`);
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
