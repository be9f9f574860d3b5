// Exports a channel's per-endpoint state and events as OpenTelemetry metrics.
// Run: pnpm exec tsx examples/opentelemetry.ts  (prints the metrics to the console)
import { createClient } from "@connectrpc/connect";
import { metrics } from "@opentelemetry/api";
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { type Channel, type ChannelEvent, createChannel } from "meshlite";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { startEchoBackend } from "../test/support/echo-backend.js";

/**
 * Wires a channel to OpenTelemetry: gauges read from `snapshot()` at each
 * collection, counters fed by `onEvent`. Returns the event handler to pass as
 * the channel's `onEvent`, and `observe(channel)` to call once it exists.
 */
export function meshliteMetrics(meterName = "meshlite") {
  const meter = metrics.getMeter(meterName);
  const retries = meter.createCounter("meshlite.retries", { description: "retried call attempts" });
  const ejections = meter.createCounter("meshlite.ejections", {
    description: "endpoints ejected by outlier detection",
  });
  const resolverErrors = meter.createCounter("meshlite.resolver.errors", { description: "failed resolutions" });
  const onEvent = (event: ChannelEvent) => {
    if (event.type === "retry")
      retries.add(1, { "rpc.method": event.method, kind: event.kind, endpoint: event.address });
    if (event.type === "endpoint-ejected") ejections.add(1, { endpoint: event.address, reason: event.reason });
    if (event.type === "resolver-error") resolverErrors.add(1);
  };
  function observe(channel: Channel) {
    const inFlight = meter.createObservableGauge("meshlite.endpoint.in_flight", { description: "calls in flight" });
    const latency = meter.createObservableGauge("meshlite.endpoint.latency_estimate", { unit: "ms" });
    const calls = meter.createObservableCounter("meshlite.endpoint.calls", { description: "calls sent" });
    const failures = meter.createObservableCounter("meshlite.endpoint.failures", { description: "calls failed" });
    const ready = meter.createObservableGauge("meshlite.endpoint.ready", { description: "1 when taking calls" });
    meter.addBatchObservableCallback(
      (result) => {
        const { target, endpoints } = channel.snapshot();
        for (const e of endpoints) {
          const attributes = { target, endpoint: e.address };
          result.observe(inFlight, e.inFlight, attributes);
          result.observe(latency, e.latencyMs, attributes);
          result.observe(calls, e.calls, attributes);
          result.observe(failures, e.failures, attributes);
          result.observe(ready, e.state === "ready" && !e.ejected && !e.draining ? 1 : 0, attributes);
        }
      },
      [inFlight, latency, calls, failures, ready],
    );
  }
  return { onEvent, observe };
}

async function main() {
  const provider = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis: 1000 })],
  });
  metrics.setGlobalMeterProvider(provider);
  const backends = await Promise.all([2, 3].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
  const telemetry = meshliteMetrics();
  const channel = createChannel({
    target: `static:///${backends.map((b) => b.address).join(",")}`,
    onEvent: telemetry.onEvent,
  });
  telemetry.observe(channel);
  const client = createClient(EchoService, channel);
  for (let i = 0; i < 50; i++) await client.echo({ message: "hi" });
  await provider.forceFlush();
  await provider.shutdown();
  await channel.close();
  await Promise.all(backends.map((b) => b.close()));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
