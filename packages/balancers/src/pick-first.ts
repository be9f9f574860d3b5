import type { Balancer } from "@meshlite/core";

/**
 * All calls go to the first endpoint that connects, in the resolver's order;
 * when it fails, the next one takes over. One connection, no spreading: for
 * services that want session affinity or a primary/standby setup.
 */
export function createPickFirstBalancer(): Balancer {
  return {
    name: "pick-first",
    connections: "first-reachable",
    pick: (candidates) => candidates[0],
  };
}
