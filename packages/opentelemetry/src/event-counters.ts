import type { PoolEvent } from "@meshlite/pool";
import type { Meter } from "@opentelemetry/api";

/** The channel events counted: the pool's, and the channel's retries. */
export type CountedEvent =
  | PoolEvent
  | { type: "retry"; method: string; kind: "policy" | "not-sent" | "hedge"; address: string; [key: string]: unknown }
  | { type: "service-config"; status: "applied" | "removed" | "rejected"; [key: string]: unknown };

/** Counters fed by a channel's (or pool's) `onEvent`: retries, ejections, resolver errors. */
export function createEventCounters(meter: Meter): (event: CountedEvent) => void {
  const retries = meter.createCounter("meshlite.retries", { description: "Call attempts retried.", unit: "{attempt}" });
  const ejections = meter.createCounter("meshlite.ejections", {
    description: "Endpoints ejected by outlier detection.",
    unit: "{ejection}",
  });
  const resolverErrors = meter.createCounter("meshlite.resolver.errors", {
    description: "Failed resolutions.",
    unit: "{error}",
  });
  const serviceConfigs = meter.createCounter("meshlite.service_config.updates", {
    description: "Service configs from DNS: applied, removed (back to the channel's own) or rejected as invalid.",
    unit: "{update}",
  });
  return (event) => {
    if (event.type === "retry") {
      retries.add(1, {
        "grpc.method": event.method,
        "meshlite.retry.kind": event.kind,
        "meshlite.endpoint": event.address,
      });
    } else if (event.type === "endpoint-ejected") {
      ejections.add(1, { "meshlite.endpoint": event.address, "meshlite.ejection.reason": event.reason });
    } else if (event.type === "resolver-error") {
      resolverErrors.add(1);
    } else if (event.type === "service-config") {
      serviceConfigs.add(1, { "meshlite.service_config.status": event.status });
    }
  };
}
