/**
 * Options of an exponential backoff. The defaults are gRPC's connection
 * backoff (doc/connection-backoff.md).
 */
export interface BackoffOptions {
  /** Delay before the first retry. Default 1000 ms. */
  initialMs?: number;
  /** Factor applied to the delay after each retry. Default 1.6. */
  multiplier?: number;
  /** Random spread of each delay, as a fraction of it (0.2 = +-20%). Default 0.2. */
  jitter?: number;
  /** Upper bound of the delay before jitter. Default 120000 ms. */
  maxMs?: number;
}

/** A stateful backoff: `next()` returns the next delay, `reset()` starts over. */
export interface Backoff {
  next(): number;
  reset(): void;
}

export const defaultBackoffOptions: Required<BackoffOptions> = {
  initialMs: 1000,
  multiplier: 1.6,
  jitter: 0.2,
  maxMs: 120_000,
};

export function createBackoff(options: BackoffOptions = {}, random: () => number = Math.random): Backoff {
  const { initialMs, multiplier, jitter, maxMs } = { ...defaultBackoffOptions, ...options };
  let current = initialMs;
  return {
    next() {
      const base = current;
      current = Math.min(current * multiplier, maxMs);
      const spread = base * jitter * (random() * 2 - 1);
      return Math.max(0, Math.round(base + spread));
    },
    reset() {
      current = initialMs;
    },
  };
}
