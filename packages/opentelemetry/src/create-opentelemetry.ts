import { assertKnownKeys, type CallObserver } from "@meshlite/core";
import {
  type MeterProvider,
  metrics,
  propagation,
  type TextMapPropagator,
  type TracerProvider,
  trace,
} from "@opentelemetry/api";
import { observeEndpoints, type Snapshotting } from "./endpoint-gauges.js";
import { type CountedEvent, createEventCounters } from "./event-counters.js";
import { createGrpcMetrics } from "./grpc-metrics.js";
import { createGrpcObserver } from "./grpc-observer.js";

/** Options of createOpenTelemetry. */
export interface OpenTelemetryOptions {
  /** Where metrics go. Default: the global MeterProvider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Where spans go. Default: the global TracerProvider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /**
   * How the trace context travels to servers (`traceparent`, W3C Trace
   * Context) and is read by the proxy. Default: the global propagator
   * (`propagation`), which the Node SDK sets to W3C Trace Context and Baggage.
   */
  propagator?: TextMapPropagator;
  /** Record gRFC A66 metrics, gauges and event counters. Default true. */
  metrics?: boolean;
  /** Record a span per call and per attempt. Default true. */
  tracing?: boolean;
  /**
   * Which methods the proxy records by name (it forwards any path, so each
   * name is a new series): a set of `package.Service/Method` or a predicate.
   * Others are recorded as `other`, as gRFC A66 asks for methods not known
   * from a descriptor. A channel's methods always come from one. Default: none.
   */
  proxyMethods?: ReadonlySet<string> | ((method: string) => boolean);
}

/** What createOpenTelemetry returns. */
export interface MeshliteTelemetry {
  /** Pass as `observer` to createChannel (or the proxy's options): metrics and spans per call and attempt. */
  readonly observer: CallObserver;
  /** Pass as `onEvent` (or call from yours): counts retries, ejections and resolver errors. */
  readonly onEvent: (event: CountedEvent) => void;
  /** Per-endpoint gauges of a channel, read from its snapshot at each collection. Returns a function that stops them. */
  observeChannel(channel: Snapshotting): () => void;
}

const optionKeys = ["meterProvider", "tracerProvider", "propagator", "metrics", "tracing", "proxyMethods"];
const scope = "@meshlite/opentelemetry";

/**
 * OpenTelemetry for meshlite:
 *
 *     const telemetry = createOpenTelemetry();
 *     const channel = createChannel({ target, observer: telemetry.observer, onEvent: telemetry.onEvent });
 *     telemetry.observeChannel(channel);
 */
export function createOpenTelemetry(options: OpenTelemetryOptions = {}): MeshliteTelemetry {
  assertKnownKeys(options, optionKeys, "createOpenTelemetry");
  const proxyMethods = options.proxyMethods;
  if (proxyMethods !== undefined && typeof proxyMethods !== "function" && !(proxyMethods instanceof Set)) {
    throw new TypeError(
      "createOpenTelemetry: proxyMethods must be a Set of method names or a function (method) => boolean",
    );
  }
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(scope);
  const withMetrics = options.metrics ?? true;
  const tracer =
    (options.tracing ?? true) ? (options.tracerProvider ?? trace.getTracerProvider()).getTracer(scope) : undefined;
  const observer = createGrpcObserver({
    metrics: withMetrics ? createGrpcMetrics(meter) : undefined,
    tracer,
    propagator: tracer ? (options.propagator ?? propagation) : undefined,
    recordMethod:
      proxyMethods === undefined
        ? () => false
        : typeof proxyMethods === "function"
          ? proxyMethods
          : (method) => proxyMethods.has(method),
  });
  return {
    observer,
    onEvent: withMetrics ? createEventCounters(meter) : () => {},
    observeChannel: (channel) => (withMetrics ? observeEndpoints(meter, channel) : () => {}),
  };
}
