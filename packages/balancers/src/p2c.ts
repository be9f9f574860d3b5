import type { Balancer, PickCandidate } from "@meshlite/core";
import { twoDistinctIndexes } from "./random.js";

/** Options of createP2cBalancer. */
export interface P2cOptions {
  /** Source of randomness. Default Math.random. */
  random?: () => number;
}

/**
 * Power of two choices over peak-EWMA cost (Finagle, Linkerd, tower): pick two
 * distinct endpoints at random and send the call to the cheaper one, where
 * cost = latency estimate x (pending calls + 1) / effective weight. A slow or
 * overloaded endpoint quickly gets fewer calls; the random pair keeps a
 * little traffic on it so its recovery is noticed.
 *
 * The latency estimate itself (peak-EWMA decay, default for new endpoints) is
 * measured by the channel: see `loadOptions` of createChannel.
 */
export function createP2cBalancer(options: P2cOptions = {}): Balancer {
  const random = options.random ?? Math.random;
  const cost = (c: PickCandidate) => (c.load.latencyMs() * (c.load.pending + 1)) / c.weight;
  return {
    name: "p2c",
    pick(ready) {
      if (ready.length === 1) return ready[0];
      const [i, j] = twoDistinctIndexes(ready.length, random);
      const a = ready[i] as PickCandidate;
      const b = ready[j] as PickCandidate;
      return cost(b) < cost(a) ? b : a;
    },
  };
}
