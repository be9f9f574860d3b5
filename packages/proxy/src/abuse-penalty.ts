/**
 * Remembers the client addresses whose connections were cut off for abuse
 * (rapid reset, control-frame or CONTINUATION floods), so that their next
 * connections are closed at accept, before a byte of them is parsed. Cutting
 * one connection off bounds what it costs; an attacker that reconnects at
 * once costs the proxy a full connection's parsing each time (node:http2 makes
 * an object per stream before any limit can act), which is what other
 * clients' latency pays for.
 *
 * A first offence refuses the address for `baseMs`; each repeat within
 * `forgetAfterMs` of the last one doubles it, up to 32x. Addresses are
 * forgotten after `forgetAfterMs` without an offence. Memory is bounded:
 * past `maxAddresses`, the address that offended longest ago is dropped.
 */
export interface AbusePenalties {
  /** An abuse limit ended a connection from `address`. */
  penalize(address: string): void;
  /** Whether a new connection from `address` is to be closed at accept. */
  refuses(address: string): boolean;
}

/** Options of createAbusePenalties. */
export interface AbusePenaltiesOptions {
  /** How long a first offence refuses the address, in ms; 0 turns penalties off. */
  baseMs: number;
  /** Offences older than this are forgotten. Default: 64 × baseMs. */
  forgetAfterMs?: number;
  /** Most addresses remembered at once. Default 10000. */
  maxAddresses?: number;
  /** The clock, in ms. Default: performance.now. */
  now?: () => number;
}

interface Offender {
  strikes: number;
  lastOffenceAt: number;
  refusedUntil: number;
}

const maxDoublings = 5;

export function createAbusePenalties(options: AbusePenaltiesOptions): AbusePenalties {
  const { baseMs } = options;
  const forgetAfterMs = options.forgetAfterMs ?? baseMs * 64;
  const maxAddresses = options.maxAddresses ?? 10_000;
  const now = options.now ?? (() => performance.now());
  // Insertion order is offence order: penalize() re-inserts, so the first key is the oldest.
  const offenders = new Map<string, Offender>();

  function current(address: string, at: number): Offender | undefined {
    const offender = offenders.get(address);
    if (offender === undefined) return undefined;
    if (at - offender.lastOffenceAt <= forgetAfterMs) return offender;
    offenders.delete(address);
    return undefined;
  }

  return {
    penalize(address) {
      if (baseMs <= 0) return;
      const at = now();
      const previous = current(address, at);
      const strikes = (previous?.strikes ?? 0) + 1;
      offenders.delete(address);
      offenders.set(address, {
        strikes,
        lastOffenceAt: at,
        refusedUntil: at + baseMs * 2 ** Math.min(strikes - 1, maxDoublings),
      });
      if (offenders.size > maxAddresses) {
        const oldest = offenders.keys().next().value;
        if (oldest !== undefined) offenders.delete(oldest);
      }
    },
    refuses(address) {
      if (offenders.size === 0) return false;
      const at = now();
      const offender = current(address, at);
      return offender !== undefined && at < offender.refusedUntil;
    },
  };
}
