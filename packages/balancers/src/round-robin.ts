import type { Balancer, PickCandidate } from "@meshlite/core";
import { randomIndex } from "./random.js";
import { createWeightedRotation, type WeightedRotation } from "./weighted-rotation.js";

/** Options of createRoundRobinBalancer. */
export interface RoundRobinOptions {
  /** Source of randomness for the start position. Default Math.random. */
  random?: () => number;
}

/**
 * Strict rotation over the ready endpoints, starting at a random position so
 * that many clients do not all hit the same endpoint first. Even spread by
 * count; ignores load and latency. When effective weights differ (endpoint
 * weights, slow start), the rotation is weighted: each endpoint gets calls in
 * proportion to its weight, spread evenly (earliest deadline first).
 */
export function createRoundRobinBalancer(options: RoundRobinOptions = {}): Balancer {
  const random = options.random ?? Math.random;
  let next = -1;
  // The list the weighted rotation was built for: the pool hands the same
  // list until something changes, so this is rebuilt on change, not per call.
  let list: readonly PickCandidate[] | undefined;
  let weighted: WeightedRotation | undefined;
  return {
    name: "round-robin",
    pick(ready) {
      if (ready !== list) {
        list = ready;
        weighted = createWeightedRotation(ready, weighted, random);
      }
      if (weighted !== undefined) return weighted.next();
      if (next < 0) next = randomIndex(ready.length, random);
      const index = next % ready.length;
      next = index + 1;
      return ready[index];
    },
  };
}
