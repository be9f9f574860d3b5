import type { EndpointSnapshot, PoolSnapshot } from "@meshlite/pool";
import type { Meter } from "@opentelemetry/api";

/** What the gauges read: a channel (or anything with a pool's snapshot). */
export interface Snapshotting {
  snapshot(): Pick<PoolSnapshot, "target" | "endpoints">;
}

/** One per-endpoint instrument: its name, kind, description, unit and what it reads. */
interface EndpointInstrument {
  name: string;
  counter?: boolean;
  description: string;
  unit?: string;
  read(endpoint: EndpointSnapshot): number;
}

const instruments: EndpointInstrument[] = [
  { name: "in_flight", description: "Calls in flight per endpoint.", unit: "{call}", read: (e) => e.inFlight },
  {
    name: "latency_estimate",
    description: "Peak-EWMA latency estimate per endpoint.",
    unit: "ms",
    read: (e) => e.latencyMs,
  },
  { name: "calls", counter: true, description: "Calls sent to each endpoint.", unit: "{call}", read: (e) => e.calls },
  {
    name: "failures",
    counter: true,
    description: "Calls that failed on each endpoint.",
    unit: "{call}",
    read: (e) => e.failures,
  },
  {
    name: "ready",
    description: "1 when the endpoint takes calls (ready, not ejected, not draining), else 0.",
    read: (e) => (e.state === "ready" && !e.ejected && !e.draining ? 1 : 0),
  },
];

/**
 * Per-endpoint gauges and counters (`meshlite.endpoint.*`) read from
 * `snapshot()` at each collection (nothing on the call path): in flight,
 * latency estimate, calls, failures, ready. Returns a function that stops them.
 */
export function observeEndpoints(meter: Meter, channel: Snapshotting): () => void {
  const observables = instruments.map(({ name, counter, description, unit }) => {
    const options = unit === undefined ? { description } : { description, unit };
    return counter
      ? meter.createObservableCounter(`meshlite.endpoint.${name}`, options)
      : meter.createObservableGauge(`meshlite.endpoint.${name}`, options);
  });
  const callback: Parameters<Meter["addBatchObservableCallback"]>[0] = (result) => {
    const { target, endpoints } = channel.snapshot();
    for (const e of endpoints) {
      const attributes = { "grpc.target": target, "meshlite.endpoint": e.address };
      for (const [i, instrument] of instruments.entries()) {
        result.observe(observables[i] as (typeof observables)[number], instrument.read(e), attributes);
      }
    }
  };
  meter.addBatchObservableCallback(callback, observables);
  return () => meter.removeBatchObservableCallback(callback, observables);
}
