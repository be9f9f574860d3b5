import type { PoolSnapshot } from "@meshlite/pool";
import type { Meter } from "@opentelemetry/api";

/** What the gauges read: a channel (or anything with a pool's snapshot). */
export interface Snapshotting {
  snapshot(): Pick<PoolSnapshot, "target" | "endpoints">;
}

/**
 * Per-endpoint gauges read from `snapshot()` at each collection (nothing on
 * the call path): in flight, latency estimate, calls, failures, ready.
 * Returns a function that stops them.
 */
export function observeEndpoints(meter: Meter, channel: Snapshotting): () => void {
  const inFlight = meter.createObservableGauge("meshlite.endpoint.in_flight", {
    description: "Calls in flight per endpoint.",
    unit: "{call}",
  });
  const latency = meter.createObservableGauge("meshlite.endpoint.latency_estimate", {
    description: "Peak-EWMA latency estimate per endpoint.",
    unit: "ms",
  });
  const calls = meter.createObservableCounter("meshlite.endpoint.calls", {
    description: "Calls sent to each endpoint.",
    unit: "{call}",
  });
  const failures = meter.createObservableCounter("meshlite.endpoint.failures", {
    description: "Calls that failed on each endpoint.",
    unit: "{call}",
  });
  const ready = meter.createObservableGauge("meshlite.endpoint.ready", {
    description: "1 when the endpoint takes calls (ready, not ejected, not draining), else 0.",
  });
  const instruments = [inFlight, latency, calls, failures, ready];
  const callback: Parameters<Meter["addBatchObservableCallback"]>[0] = (result) => {
    const { target, endpoints } = channel.snapshot();
    for (const e of endpoints) {
      const attributes = { "grpc.target": target, "meshlite.endpoint": e.address };
      result.observe(inFlight, e.inFlight, attributes);
      result.observe(latency, e.latencyMs, attributes);
      result.observe(calls, e.calls, attributes);
      result.observe(failures, e.failures, attributes);
      result.observe(ready, e.state === "ready" && !e.ejected && !e.draining ? 1 : 0, attributes);
    }
  };
  meter.addBatchObservableCallback(callback, instruments);
  return () => meter.removeBatchObservableCallback(callback, instruments);
}
