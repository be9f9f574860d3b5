import type { Balancer, PickCandidate } from "@meshlite/core";
import { randomIndex, twoDistinctIndexes } from "./random.js";
import { fewerInFlight, lessCalledFor } from "./weighted-load.js";

/** Options of createLeastRequestBalancer. */
export interface LeastRequestOptions {
  /** How many distinct random endpoints to compare per call, 2 to 10. Default 2. */
  choiceCount?: number;
  /** Source of randomness. Default Math.random. */
  random?: () => number;
  /** The clock call rates are read at, in ms (only between endpoints of different weights). Default performance.now. */
  now?: () => number;
}

/**
 * Power of N choices over in-flight calls: sample N distinct endpoints at
 * random, send the call to the one with the fewest calls in flight (divided by
 * its effective weight). Cheap, needs no latency data, and avoids a saturated endpoint.
 * Between endpoints of different weights whose counts do not tell them apart
 * (with the call added, neither has fewer per weight), the one called less
 * often lately for its weight wins, so shares follow the weights at low load too.
 */
export function createLeastRequestBalancer(options: LeastRequestOptions = {}): Balancer {
  const choiceCount = options.choiceCount ?? 2;
  if (!Number.isInteger(choiceCount) || choiceCount < 2 || choiceCount > 10) {
    throw new RangeError(`least-request: choiceCount must be an integer from 2 to 10, got ${String(choiceCount)}`);
  }
  const random = options.random ?? Math.random;
  const clock = options.now ?? (() => performance.now());
  // b when it is clearly the better one, else a.
  const better = (a: PickCandidate, b: PickCandidate) =>
    fewerInFlight(a, b) ?? (a.weight === b.weight ? a : lessCalledFor(a, b, clock()));
  return {
    name: "least-request",
    pick(ready) {
      const n = ready.length;
      if (n === 1) return ready[0];
      if (choiceCount === 2 || n === 2) {
        const [i, j] = twoDistinctIndexes(n, random);
        const a = ready[i] as PickCandidate;
        const b = ready[j] as PickCandidate;
        return better(a, b);
      }
      // Partial Fisher-Yates over a copy of the indexes: k distinct picks.
      const k = Math.min(choiceCount, n);
      const indexes = Array.from({ length: n }, (_, i) => i);
      let best: PickCandidate | undefined;
      for (let i = 0; i < k; i++) {
        const j = i + randomIndex(n - i, random);
        [indexes[i], indexes[j]] = [indexes[j] as number, indexes[i] as number];
        const candidate = ready[indexes[i] as number] as PickCandidate;
        best = best === undefined ? candidate : better(best, candidate);
      }
      return best;
    },
  };
}
