import type { Subchannel } from "./subchannel.js";

/** The latency estimates of a pool's measured endpoints, for comparisons that need "the others". */
export interface PeerLatency {
  /** The mean estimate of the endpoints that took calls; undefined when none did. */
  mean(): number | undefined;
  /** The mean estimate of the measured endpoints other than `self`; undefined when there is none. */
  excluding(self: Subchannel): number | undefined;
}

/** How long a sum over the endpoints is reused: reads are rare, but may come in bursts. */
const cacheMs = 250;

/** Reads `endpoints()` at most every 250 ms, so a read costs O(1) in between. */
export function createPeerLatency(endpoints: () => Iterable<Subchannel>): PeerLatency {
  let at = Number.NEGATIVE_INFINITY;
  let sum = 0;
  let count = 0;
  function refresh() {
    const now = performance.now();
    if (now - at < cacheMs) return;
    at = now;
    sum = 0;
    count = 0;
    for (const sc of endpoints()) {
      if (sc.stats.calls > 0) {
        sum += sc.load.latencyMs(now);
        count++;
      }
    }
  }
  return {
    mean() {
      refresh();
      return count > 0 ? sum / count : undefined;
    },
    excluding(self) {
      refresh();
      // `self` is in the sum when it took calls; its estimate may have moved since, so clamp.
      const others = self.stats.calls > 0 ? count - 1 : count;
      if (others <= 0) return undefined;
      const own = self.stats.calls > 0 ? self.load.latencyMs() : 0;
      return Math.max(0, sum - own) / others;
    },
  };
}
