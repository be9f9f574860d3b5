import type { EndpointPolicy, PolicyHooks } from "./endpoint-policy.js";
import type { Subchannel } from "./subchannel.js";

/**
 * Watches the health of a ready endpoint and reports each status; returns a
 * function that stops watching. The pool knows no message layer: the channel
 * supplies one that speaks grpc.health.v1 over Connect.
 */
export type HealthWatcher = (
  subchannel: Subchannel,
  report: (status: "serving" | "not-serving" | "unimplemented") => void,
) => () => void;

/**
 * Active health checking: while an endpoint's connection is ready, `watcher`
 * reports its health; only endpoints that report SERVING (or do not
 * implement health checking) take calls. A new connection starts out
 * "unknown" and takes none until its first report.
 */
export function createHealthPolicy(watcher: HealthWatcher, hooks: PolicyHooks): EndpointPolicy {
  const stops = new Map<Subchannel, () => void>();

  function watch(sc: Subchannel) {
    if (stops.has(sc)) return;
    sc.health = "unknown";
    stops.set(
      sc,
      watcher(sc, (status) => {
        const next = status === "unimplemented" ? "disabled" : status;
        if (next === sc.health) return;
        sc.health = next;
        hooks.emit({ type: "endpoint-health", address: sc.key, status });
        hooks.changed();
      }),
    );
  }
  function stop(sc: Subchannel) {
    stops.get(sc)?.();
    stops.delete(sc);
  }

  return {
    name: "health",
    select: (candidates) => candidates.filter((sc) => sc.health === "serving" || sc.health === "disabled"),
    onState(sc, state) {
      if (state === "ready" && !sc.draining) watch(sc);
      else stop(sc);
    },
    onRemoved: stop,
    close() {
      for (const sc of [...stops.keys()]) stop(sc);
    },
  };
}
