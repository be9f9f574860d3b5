import type { Balancer } from "@meshlite/core";
import { randomIndex } from "./random.js";

/** Options of createRoundRobinBalancer. */
export interface RoundRobinOptions {
  /** Source of randomness for the start position. Default Math.random. */
  random?: () => number;
}

/**
 * Strict rotation over the ready endpoints, starting at a random position so
 * that many clients do not all hit the same endpoint first. Even spread by
 * count; ignores load and latency.
 */
export function createRoundRobinBalancer(options: RoundRobinOptions = {}): Balancer {
  const random = options.random ?? Math.random;
  let next = -1;
  return {
    name: "round-robin",
    pick(ready) {
      if (next < 0) next = randomIndex(ready.length, random);
      const index = next % ready.length;
      next = index + 1;
      return ready[index];
    },
  };
}
