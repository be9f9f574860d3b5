import type { EndpointPolicy } from "./endpoint-policy.js";

/**
 * Panic mode: when outlier ejection left fewer than `thresholdPercent` of the
 * endpoints it was given, ejections are ignored and all of those take calls,
 * rather than the few left being overloaded (Envoy's panic threshold).
 */
export function createPanicPolicy(thresholdPercent: number): EndpointPolicy {
  return {
    name: "panic",
    select(candidates, context) {
      const beforeEjection = context.inputOf("outlier-ejection");
      if (beforeEjection === undefined) return candidates;
      return candidates.length < beforeEjection.length * (thresholdPercent / 100) ? beforeEjection : candidates;
    },
  };
}
