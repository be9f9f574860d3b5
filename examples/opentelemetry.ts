// A channel's metrics and spans through @meshlite/opentelemetry: gRPC's metrics (gRFC A66 names),
// per-endpoint gauges, event counters, and a span per call and per attempt.
// Run: pnpm exec tsx examples/opentelemetry.ts  (prints the metrics and spans to the console)
import { createClient } from "@connectrpc/connect";
import { createOpenTelemetry } from "@meshlite/opentelemetry";
import { metrics, propagation, trace } from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { ConsoleMetricExporter, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { createChannel } from "meshlite";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { startEchoBackend } from "../test/support/echo-backend.js";

async function main() {
  // The SDK's setup, as an application (or the Node SDK) does it once.
  const meterProvider = new MeterProvider({
    readers: [new PeriodicExportingMetricReader({ exporter: new ConsoleMetricExporter(), exportIntervalMillis: 1000 })],
  });
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())],
  });
  metrics.setGlobalMeterProvider(meterProvider);
  trace.setGlobalTracerProvider(tracerProvider);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const backends = await Promise.all([2, 3].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
  const target = `static:///${backends.map((b) => b.address).join(",")}`;

  // The three lines:
  const telemetry = createOpenTelemetry();
  const channel = createChannel({ target, observer: telemetry.observer, onEvent: telemetry.onEvent });
  telemetry.observeChannel(channel);

  const client = createClient(EchoService, channel);
  for (let i = 0; i < 50; i++) await client.echo({ message: "hi" });
  await meterProvider.forceFlush();
  await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()]);
  await channel.close();
  await Promise.all(backends.map((b) => b.close()));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
