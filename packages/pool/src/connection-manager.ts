import type { ConnectionPolicy } from "@meshlite/core";
import type { Subchannel } from "./subchannel.js";
import type { ConnectionFilter } from "./subset-policy.js";

/** Carries out a balancer's connection policy: which endpoints get connected, when. */
export interface ConnectionManager {
  /** A new endpoint joined the set (its connection is not dialled yet). */
  added(subchannel: Subchannel): void;
  /** The set or a connection state changed; `active` in the resolver's order. */
  changed(active: Iterable<Subchannel>): void;
}

/**
 * `filter` (the subset policy) narrows the endpoints the policy may connect:
 * the others are let go (their open streams finish) and stay idle.
 */
export function createConnectionManager(
  policy: ConnectionPolicy = "all",
  filter?: ConnectionFilter,
): ConnectionManager {
  if (filter === undefined) {
    if (policy === "first-reachable") {
      return { added() {}, changed: (active) => connectFirstReachable(active) };
    }
    return {
      added: (sc) => sc.connection.connect(),
      changed() {},
    };
  }
  return {
    // The subset is computed on the change that follows every addition.
    added() {},
    changed(active) {
      const list = [...active];
      filter.update(list);
      const held: Subchannel[] = [];
      for (const sc of list) {
        if (filter.held(sc)) {
          held.push(sc);
        } else {
          const state = sc.state();
          if (state !== "idle" && state !== "shutdown") sc.connection.disconnect();
        }
      }
      if (policy === "first-reachable") connectFirstReachable(held);
      else for (const sc of held) sc.connection.connect();
    },
  };
}

/** Keeps connected only the first endpoint, in order, that is not failing. */
function connectFirstReachable(active: Iterable<Subchannel>) {
  for (const sc of active) {
    const state = sc.state();
    if (state === "ready" || state === "connecting") return;
    if (state === "idle") {
      sc.connection.connect();
      return;
    }
  }
}
