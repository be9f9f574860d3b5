/** Options of the overload penalty (an endpoint shedding load: RESOURCE_EXHAUSTED, HTTP 429/503, pushback). */
export interface OverloadPenaltyOptions {
  /**
   * Each overload answer adds this many times the endpoint's latency
   * estimate (at least 1 ms) to the latency the balancer sees, or the
   * server's `grpc-retry-pushback-ms` when that is longer. Default 10.
   */
  factor?: number;
  /**
   * The penalty decays towards zero with this time constant while the
   * endpoint gets no calls, so that it is tried again (each successful call
   * also halves it, so one that stopped shedding is back in its share within
   * a few calls). Default 5000 ms.
   */
  decayMs?: number;
}

export const defaultOverloadPenaltyOptions: Required<OverloadPenaltyOptions> = { factor: 10, decayMs: 5000 };

/** The penalty never grows past this many single penalties, however many answers pile up. */
const ceiling = 10;

/**
 * A latency penalty for an endpoint that sheds load (Linkerd's approach): a
 * pod at its limit answers RESOURCE_EXHAUSTED in a millisecond, which a
 * latency-based balancer would read as "fast" and send it more calls. Each
 * overload answer adds to a penalty, in milliseconds, that the endpoint's
 * load adds to its latency estimate; the penalty decays exponentially and
 * each successful call halves it, so it is no ejection: the endpoint keeps a
 * little traffic and gets its share back within a few calls once it stops
 * shedding. (A slow decay matters on a busy machine: a penalty that is gone
 * after a one-second stall of the event loop lets the burst of calls that
 * follows the stall land on the shedding endpoint too.)
 */
export interface OverloadPenalty {
  /**
   * An overload answer at `now` (ms, monotonic) from an endpoint whose
   * latency estimate is `estimateMs`; `pushbackMs` is the server's
   * `grpc-retry-pushback-ms`, when it sent one.
   */
  record(estimateMs: number, now: number, pushbackMs?: number): void;
  /** A call succeeded at `now`: the penalty halves. */
  relieve(now: number): void;
  /** The penalty in ms at `now`; 0 once decayed. */
  value(now: number): number;
}

/** Creates a penalty; throws a RangeError naming a bad option. */
export function createOverloadPenalty(options: OverloadPenaltyOptions = {}): OverloadPenalty {
  const { factor, decayMs } = { ...defaultOverloadPenaltyOptions, ...options };
  if (!(factor >= 0 && Number.isFinite(factor)) || !(decayMs > 0 && Number.isFinite(decayMs))) {
    throw new RangeError(
      `overload penalty: factor must be a number >= 0 and decayMs a number > 0, got factor ${String(factor)}, decayMs ${String(decayMs)}`,
    );
  }
  let penalty = 0;
  let updatedAt = 0;
  function decayed(now: number): number {
    if (penalty === 0) return 0;
    const elapsed = now - updatedAt;
    const v = elapsed > 0 ? penalty * Math.exp(-elapsed / decayMs) : penalty;
    // Below a microsecond it no longer tells endpoints apart.
    return v < 0.001 ? 0 : v;
  }
  return {
    record(estimateMs, now, pushbackMs) {
      const one = Math.max(factor * Math.max(estimateMs, 1), pushbackMs ?? 0);
      penalty = Math.min(decayed(now) + one, ceiling * one);
      updatedAt = now;
    },
    relieve(now) {
      if (penalty === 0) return;
      penalty = decayed(now) / 2;
      updatedAt = now;
    },
    value: decayed,
  };
}
