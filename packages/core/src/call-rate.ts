/** Options of a call-rate meter. */
export interface CallRateOptions {
  /** Calls count with a weight that decays with this time constant. Default 2000 ms. */
  windowMs?: number;
}

/**
 * How many calls per second an endpoint started recently: a count that
 * decays exponentially, divided by the length of the window. An endpoint
 * younger than the window is measured over the part it lived, so a new
 * endpoint starts level with the others instead of owing them a window of calls.
 */
export interface CallRate {
  /** A call started at `now` (ms, monotonic). */
  record(now?: number): void;
  /** Calls per second at `now`. */
  rate(now?: number): number;
}

export const defaultCallRateOptions: Required<CallRateOptions> = { windowMs: 2000 };

/** Creates a meter; `createdAt` is the clock's reading at creation (ms, monotonic). */
export function createCallRate(options: CallRateOptions = {}, createdAt = performance.now()): CallRate {
  const { windowMs } = { ...defaultCallRateOptions, ...options };
  if (!(windowMs > 0)) throw new RangeError(`call rate: windowMs must be > 0, got ${String(windowMs)}`);
  let count = 0;
  let updatedAt = createdAt;
  function decayed(now: number): number {
    const elapsed = now - updatedAt;
    return elapsed > 0 ? count * Math.exp(-elapsed / windowMs) : count;
  }
  return {
    record(now = performance.now()) {
      count = decayed(now) + 1;
      updatedAt = now;
    },
    rate(now = performance.now()) {
      if (count === 0) return 0;
      const age = now - createdAt;
      // The weight of the window this endpoint lived through (at least a tenth
      // of it, so that its first call does not read as a burst).
      const span = age >= 5 * windowMs ? windowMs : windowMs * (1 - Math.exp(-Math.max(age, windowMs / 10) / windowMs));
      return (1000 * decayed(now)) / span;
    },
  };
}
