/** Options of a peak-EWMA latency estimate. */
export interface PeakEwmaOptions {
  /** How fast lower samples (and idle time) pull the estimate down. Default 10000 ms. */
  decayMs?: number;
  /** The estimate of an endpoint that has no sample yet. Default 30 ms. */
  defaultMs?: number;
}

/**
 * A latency estimate that reacts to a slow sample at once and forgets it
 * slowly: a sample above the estimate replaces it; lower samples are blended
 * in with a weight that grows with the time since the last update. While no
 * samples arrive the estimate decays towards zero, so an endpoint that was
 * avoided for being slow is tried again after a while. (Finagle's and tower's
 * peak-EWMA.)
 */
export interface PeakEwma {
  /** Records a latency sample in milliseconds, taken at `now` (ms, monotonic). */
  observe(latencyMs: number, now?: number): void;
  /** The estimate at `now`, decayed for the time since the last sample. */
  estimate(now?: number): number;
}

export const defaultPeakEwmaOptions: Required<PeakEwmaOptions> = {
  decayMs: 10_000,
  defaultMs: 30,
};

export function createPeakEwma(options: PeakEwmaOptions = {}): PeakEwma {
  const { decayMs, defaultMs } = { ...defaultPeakEwmaOptions, ...options };
  let value = defaultMs;
  let updatedAt = performance.now();
  function decayed(now: number): number {
    const elapsed = Math.max(0, now - updatedAt);
    return value * Math.exp(-elapsed / decayMs);
  }
  return {
    observe(latencyMs, now = performance.now()) {
      if (latencyMs > value) {
        value = latencyMs;
      } else {
        const elapsed = Math.max(0, now - updatedAt);
        const w = Math.exp(-elapsed / decayMs);
        value = value * w + latencyMs * (1 - w);
      }
      updatedAt = now;
    },
    estimate(now = performance.now()) {
      return decayed(now);
    },
  };
}
