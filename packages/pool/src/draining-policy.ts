import type { EndpointPolicy } from "./endpoint-policy.js";

/** Endpoints that left the set (or are terminating) take no new calls; their calls in flight finish. */
export function createDrainingPolicy(): EndpointPolicy {
  return {
    name: "draining",
    select: (candidates) =>
      candidates.some((sc) => sc.draining) ? candidates.filter((sc) => !sc.draining) : candidates,
  };
}
