/** Options of a peak-EWMA latency estimate. */
export interface PeakEwmaOptions {
  /**
   * How fast the estimate forgets: while no samples arrive it decays towards
   * zero with this time constant, so an endpoint avoided for being slow (or
   * failing) is tried again after about twice this (up to four times longer
   * while each try finds it as slow as before). Default 1000 ms.
   */
  decayMs?: number;
  /**
   * The estimate of an endpoint that has no sample yet. Default 1 ms: low, so
   * that every endpoint is tried (and measured) from the start. (The channel
   * starts an endpoint added to a measured set from the others' mean instead.)
   */
  defaultMs?: number;
}

/**
 * A latency estimate that reacts to a slow endpoint within a few calls and is
 * not thrown by a lone slow call (Finagle's and tower's peak-EWMA, made robust
 * to the noise of a busy machine):
 *
 * - Each sample is blended in on a log scale (a geometric mean, like the
 *   median not pulled far by one 100 ms hiccup among 2 ms calls), with a
 *   weight of at least 0.1 and more the longer since the last one, so the
 *   estimate follows the calls within a few samples at any call rate. The
 *   first samples are averaged with the starting estimate as if it were one
 *   more sample: a new endpoint is measured within a handful of calls.
 * - The peak: when the last three calls were all slower than the estimate,
 *   it jumps to the fastest of them, by at most 4x at a time. A slow endpoint
 *   is caught by its third call; one GC pause or late timer does not make an
 *   equal endpoint look slow, and a stall that delays a few calls in a row
 *   keeps it away for well under `decayMs`.
 * - While no samples arrive the estimate decays towards zero (time constant
 *   `decayMs`), so an endpoint avoided for being slow or failing is tried again.
 *   Each try that finds it as slow (or failing) as before doubles the time
 *   constant, up to 4x, and a sample that shows it faster resets it: a pod
 *   that stays slow costs a call every few seconds, not every two `decayMs`.
 * - A failure counts at once as a call 10 times the last healthy estimate,
 *   each further one in a row doubles that, up to 100 times (or the failed
 *   call's own duration, if longer): a failing endpoint is left at its first
 *   failure whatever the noise, and however many failures follow each other
 *   the estimate stays bounded, so a recovered endpoint is back within a few `decayMs`.
 */
export interface PeakEwma {
  /** Records a latency sample of a successful call in milliseconds, taken at `now` (ms, monotonic). */
  observe(latencyMs: number, now?: number): void;
  /** Records a failed call the endpoint is to blame for, that took `latencyMs`. */
  observeFailure(latencyMs: number, now?: number): void;
  /** The estimate at `now`, decayed for the time since the last sample. */
  estimate(now?: number): number;
}

export const defaultPeakEwmaOptions: Required<PeakEwmaOptions> = {
  decayMs: 1000,
  defaultMs: 1,
};

/** How far one peak can raise the estimate. */
const peakFactor = 4;
/** The least weight of a sample, on a log scale. */
const sampleWeight = 0.1;
/** A failure counts as this many times the last healthy estimate, doubling with each one in a row... */
const failureFactor = 10;
/** ...up to this many times. */
const failureCeiling = 100;
/** Samples are floored here before taking logs (a 0 ms sample would pull the estimate to zero). */
const floorMs = 0.01;
/** The decay slows down at most this much for an endpoint that re-probes find as slow as before. */
const maxProbeBackoff = 4;
/** A sample below this fraction of the estimate it follows shows the endpoint getting faster. */
const improving = 0.8;

/**
 * Creates an estimate; `createdAt` is the clock's reading at creation (ms,
 * monotonic). `peerMs` gives the other endpoints' latency (the pool's mean
 * estimate of them), read only when a re-probe's verdict needs it: a try
 * counts as finding the endpoint slow only when it is clearly slower than
 * them (p2c's default tolerance, 2x and 1 ms). Without it, only failures
 * slow the decay down.
 */
export function createPeakEwma(
  options: PeakEwmaOptions = {},
  createdAt = performance.now(),
  peerMs?: () => number | undefined,
): PeakEwma {
  const { decayMs, defaultMs } = { ...defaultPeakEwmaOptions, ...options };
  if (!(decayMs > 0) || !(defaultMs >= 0)) {
    throw new RangeError(
      `peak-EWMA: decayMs must be > 0 and defaultMs >= 0, got decayMs ${String(decayMs)}, defaultMs ${String(defaultMs)}`,
    );
  }
  let value = defaultMs;
  let updatedAt = createdAt;
  // The two samples before the latest: the peak needs three slow calls in a row.
  let previous = defaultMs;
  let beforePrevious = defaultMs;
  // The estimate after the last success: the reference of the failure penalty.
  let healthy = defaultMs;
  let samples = 0;
  // How much slower than `decayMs` the estimate decays now: doubled by each
  // re-probe that finds the endpoint as slow (or failing) as it was, back to 1
  // when a sample shows it faster (by a fifth or more). Without it, a persistently slow endpoint is
  // tried again every couple of `decayMs`, and those calls set the tail latency.
  let backoff = 1;
  function decayed(now: number): number {
    const elapsed = now - updatedAt;
    return elapsed > 0 ? value * Math.exp(-elapsed / (decayMs * backoff)) : value;
  }
  /**
   * Adjusts the backoff for a sample arriving `elapsed` after the last, when
   * the estimate stood at `held` (undecayed).
   */
  function probed(sample: number, held: number, elapsed: number) {
    // Faster than it was held at: recovering (a new pod warming up gets faster try by try), or
    // back; either way it must be tried at the normal pace.
    if (sample < held * improving) backoff = 1;
    else if (isReprobe(elapsed) && clearlySlower(sample)) backOff();
  }
  /** Left alone long enough for the estimate to fall by e: the sample is a re-probe. */
  function isReprobe(elapsed: number): boolean {
    return elapsed >= decayMs * backoff;
  }
  function backOff() {
    backoff = Math.min(backoff * 2, maxProbeBackoff);
  }
  function clearlySlower(sample: number): boolean {
    const peers = peerMs?.();
    return peers !== undefined && sample > 2 * peers + 1;
  }
  function remember(sample: number, now: number) {
    beforePrevious = previous;
    previous = sample;
    updatedAt = now;
  }
  return {
    observe(latencyMs, now = performance.now()) {
      const sample = Math.max(latencyMs, floorMs);
      const held = value;
      const current = Math.max(decayed(now), floorMs);
      const elapsed = Math.max(0, now - updatedAt);
      const staleness = 1 - Math.exp(-elapsed / decayMs);
      const fastestOfThree = Math.min(sample, previous, beforePrevious);
      if (fastestOfThree > current) {
        // An estimate left without samples for `decayMs` or more (an idle
        // channel, an avoided endpoint) gives way to a higher sample too,
        // beyond the cap; a shorter gap does not, or one hiccup would count.
        const peak = Math.min(fastestOfThree, peakFactor * current);
        value = elapsed >= decayMs ? Math.max(peak, current * (sample / current) ** staleness) : peak;
      } else {
        const w = Math.max(sampleWeight, 1 / (samples + 2), staleness);
        value = current * (sample / current) ** w;
      }
      probed(sample, held, elapsed);
      healthy = value;
      samples++;
      remember(sample, now);
    },
    observeFailure(latencyMs, now = performance.now()) {
      const current = decayed(now);
      const penalty = Math.min(failureCeiling * healthy, Math.max(failureFactor * healthy, 2 * current));
      // A failure is never faster: a re-probe that fails backs off.
      if (isReprobe(now - updatedAt)) backOff();
      value = Math.max(current, penalty, latencyMs);
      remember(value, now);
    },
    estimate(now = performance.now()) {
      return decayed(now);
    },
  };
}
