import type { AttemptWatcher, CallObserver, CallWatcher, ObservedAttempt, ObservedCall } from "@meshlite/core";
import {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapPropagator,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { GrpcMetrics } from "./grpc-metrics.js";
import { grpcStatusName } from "./grpc-status-name.js";

/** What the observer records to, and how. */
export interface GrpcObserverConfig {
  /** Undefined: no metrics. */
  readonly metrics: GrpcMetrics | undefined;
  /** Undefined: no spans. */
  readonly tracer: Tracer | undefined;
  /** Injects the trace context into attempts (and, at the proxy, extracts it from the call). */
  readonly propagator: Pick<TextMapPropagator, "inject" | "extract"> | undefined;
  /** Whether a method the call does not know (the proxy's) is recorded by name; else `other`. */
  readonly recordMethod: (method: string) => boolean;
}

const setter = {
  set: (carrier: { set(k: string, v: string): void }, key: string, value: string) => carrier.set(key, value),
};
const getter = {
  get: (carrier: { get(k: string): string | null | undefined }, key: string) => carrier.get(key) ?? undefined,
  keys: () => [],
};

/** A CallObserver that records gRFC A66's metrics and a span per call and per attempt. */
export function createGrpcObserver(config: GrpcObserverConfig): CallObserver {
  return {
    callStarted(call) {
      return new ObservedCallWatcher(config, call);
    },
  };
}

class ObservedCallWatcher implements CallWatcher {
  private readonly startedAt = performance.now();
  private readonly labels: Attributes;
  private readonly span: Span | undefined;
  /** The context attempts are children of: the call span's. */
  private readonly parent: Context;

  constructor(
    private readonly config: GrpcObserverConfig,
    private readonly call: ObservedCall,
  ) {
    const method = call.knownMethod || config.recordMethod(call.method) ? call.method : "other";
    this.labels = { "grpc.method": method, "grpc.target": call.target };
    if (call.side === "proxy") config.metrics?.serverCallStarted.add(1, { "grpc.method": method });
    let parent = context.active();
    if (call.side === "proxy" && call.incomingHeader && config.propagator) {
      parent = config.propagator.extract(parent, call.incomingHeader, getter);
    }
    if (config.tracer) {
      const slash = call.method.lastIndexOf("/");
      // The client's call span wraps its attempts (gRFC A72's "Sent."); the proxy's is the server span.
      this.span = config.tracer.startSpan(
        call.side === "proxy" ? call.method : `Sent.${call.method}`,
        {
          kind: call.side === "proxy" ? SpanKind.SERVER : SpanKind.INTERNAL,
          attributes: rpcAttributes(call.method, slash),
        },
        parent,
      );
      parent = trace.setSpan(parent, this.span);
    }
    this.parent = parent;
  }

  attemptStarted(attempt: ObservedAttempt): AttemptWatcher {
    return new ObservedAttemptWatcher(this.config, this.call, this.labels, this.parent, attempt);
  }

  ended(code: number): void {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const metrics = this.config.metrics;
    if (metrics) {
      if (this.call.side === "proxy") {
        metrics.serverCallDuration.record(seconds, {
          "grpc.method": this.labels["grpc.method"],
          "grpc.status": grpcStatusName(code),
        });
      } else {
        metrics.callDuration.record(seconds, { ...this.labels, "grpc.status": grpcStatusName(code) });
      }
    }
    if (this.span) endSpan(this.span, code);
  }
}

class ObservedAttemptWatcher implements AttemptWatcher {
  private readonly startedAt = performance.now();
  private sent = 0;
  private rcvd = 0;
  private readonly span: Span | undefined;
  readonly messageSent?: (bytes: number) => void;
  readonly messageReceived?: (bytes: number) => void;

  constructor(
    private readonly config: GrpcObserverConfig,
    call: ObservedCall,
    private readonly labels: Attributes,
    parent: Context,
    attempt: ObservedAttempt,
  ) {
    config.metrics?.attemptStarted.add(1, labels);
    if (config.metrics && call.side === "client") {
      this.messageSent = (bytes) => {
        this.sent += bytes;
      };
      this.messageReceived = (bytes) => {
        this.rcvd += bytes;
      };
    }
    let ctx = parent;
    if (config.tracer) {
      const attributes = rpcAttributes(call.method, call.method.lastIndexOf("/"));
      const colon = attempt.address.lastIndexOf(":");
      attributes["server.address"] = unbracket(attempt.address.slice(0, colon));
      attributes["server.port"] = Number(attempt.address.slice(colon + 1));
      attributes["grpc.previous_rpc_attempts"] = attempt.index;
      this.span = config.tracer.startSpan(call.method, { kind: SpanKind.CLIENT, attributes }, parent);
      ctx = trace.setSpan(parent, this.span);
    }
    config.propagator?.inject(ctx, attempt.header, setter);
  }

  ended(code: number): void {
    const metrics = this.config.metrics;
    if (metrics) {
      const labels = { ...this.labels, "grpc.status": grpcStatusName(code) };
      metrics.attemptDuration.record((performance.now() - this.startedAt) / 1000, labels);
      if (this.messageSent) {
        metrics.attemptSentSize.record(this.sent, labels);
        metrics.attemptRcvdSize.record(this.rcvd, labels);
      }
    }
    if (this.span) endSpan(this.span, code);
  }
}

/** OpenTelemetry's RPC attributes of a `package.Service/Method`. */
function rpcAttributes(method: string, slash: number): Attributes {
  return {
    "rpc.system": "grpc",
    "rpc.service": slash < 0 ? method : method.slice(0, slash),
    "rpc.method": slash < 0 ? "" : method.slice(slash + 1),
  };
}

function endSpan(span: Span, code: number): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message: grpcStatusName(code) });
  span.end();
}

function unbracket(host: string): string {
  return host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
}
