import { assertKnownKeys, type Balancer } from "@meshlite/core";

/** Options of createPickFirstBalancer. */
export interface PickFirstOptions {
  /**
   * Connect in a random order of the resolver's list, shuffled again on each
   * update (gRPC's `shuffleAddressList`), so that clients given the same
   * list do not all land on its first address. Default false.
   */
  shuffleAddressList?: boolean;
}

/**
 * All calls go to the first endpoint that connects, in the resolver's order;
 * when it fails, the next one takes over. One connection, no spreading: for
 * services that want session affinity or a primary/standby setup.
 */
export function createPickFirstBalancer(options: PickFirstOptions = {}): Balancer {
  assertKnownKeys(options, ["shuffleAddressList"], "pick-first");
  return {
    name: "pick-first",
    connections: "first-reachable",
    ...(options.shuffleAddressList ? { shuffleAddressList: true } : {}),
    pick: (candidates) => candidates[0],
  };
}
