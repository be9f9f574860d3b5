import type { ConnectionPolicy } from "@meshlite/core";
import type { Subchannel } from "./subchannel.js";

/** Carries out a balancer's connection policy: which endpoints get connected, when. */
export interface ConnectionManager {
  /** A new endpoint joined the set (its connection is not dialled yet). */
  added(subchannel: Subchannel): void;
  /** The set or a connection state changed; `active` in the resolver's order. */
  changed(active: Iterable<Subchannel>): void;
}

export function createConnectionManager(policy: ConnectionPolicy = "all"): ConnectionManager {
  if (policy === "first-reachable") {
    return {
      added() {},
      // Keep connected only the first endpoint, in order, that is not failing.
      changed(active) {
        for (const sc of active) {
          const state = sc.state();
          if (state === "ready" || state === "connecting") return;
          if (state === "idle") {
            sc.connection.connect();
            return;
          }
        }
      },
    };
  }
  return {
    added: (sc) => sc.connection.connect(),
    changed() {},
  };
}
