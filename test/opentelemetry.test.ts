import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createOpenTelemetry } from "@meshlite/opentelemetry";
import { createProxy } from "@meshlite/proxy";
import { context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  type DataPoint,
  type Histogram,
  MeterProvider,
  type MetricData,
  MetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { createChannel } from "meshlite";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EchoRequestSchema, EchoResponseSchema, EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { waitFor } from "./support/wait-for.js";

/** Collects on demand. */
class TestReader extends MetricReader {
  protected override async onForceFlush() {}
  protected override async onShutdown() {}
}

const contextManager = new AsyncLocalStorageContextManager();
beforeAll(() => {
  contextManager.enable();
  context.setGlobalContextManager(contextManager);
});
afterAll(() => {
  context.disable();
});

let backends: EchoBackend[] = [];
let closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.reverse()) await close();
  closers = [];
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

/** The `traceparent` each call brought to the servers, read in a server interceptor. */
function traceparents(): { seen: string[]; interceptor: Interceptor } {
  const seen: string[] = [];
  return {
    seen,
    interceptor: (next) => (req) => {
      seen.push(req.header.get("traceparent") ?? "none");
      return next(req);
    },
  };
}

/** A channel to fresh backends on 127.0.90.x, instrumented with the real SDK's in-memory reader and exporter. */
async function setup(
  hosts: number[],
  channelOptions: { retry?: object } = {},
  viaProxy?: { proxyMethods?: Set<string> },
) {
  const headers = traceparents();
  backends = await Promise.all(
    hosts.map((n) => startEchoBackend({ host: `127.0.90.${n}`, interceptors: [headers.interceptor] })),
  );
  const reader = new TestReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const propagator = new W3CTraceContextPropagator();
  const telemetry = createOpenTelemetry({ meterProvider, tracerProvider, propagator });
  const backendTarget = `static:///${backends.map((b) => b.address).join(",")}`;
  let target = backendTarget;
  if (viaProxy) {
    const proxy = createProxy({
      routes: [{ target: backendTarget }],
      logger: silentLogger,
      observer: createOpenTelemetry({ meterProvider, tracerProvider, propagator, ...viaProxy }).observer,
    });
    closers.push(() => proxy.close(1000));
    const { port } = await proxy.listen("127.0.90.20:0");
    target = `static:///127.0.90.20:${port}`;
  }
  const channel = createChannel({
    target,
    balancer: "round-robin",
    outlierDetection: false,
    slowStart: false,
    logger: silentLogger,
    observer: telemetry.observer,
    onEvent: telemetry.onEvent,
    ...channelOptions,
  });
  telemetry.observeChannel(channel);
  closers.push(
    () => channel.close(),
    () => meterProvider.shutdown(),
    () => tracerProvider.shutdown(),
  );
  await waitFor("all ready", () => channel.snapshot().endpoints.every((e) => e.state === "ready"));
  const collect = async () => {
    const { resourceMetrics } = await reader.collect();
    return resourceMetrics.scopeMetrics.flatMap((s) => s.metrics);
  };
  return {
    channel,
    client: createClient(EchoService, channel),
    target,
    backendTarget,
    collect,
    spans,
    traceparents: headers.seen,
  };
}

function metric(all: MetricData[], name: string): MetricData {
  const found = all.find((m) => m.descriptor.name === name);
  if (!found) throw new Error(`no metric ${name}; have ${all.map((m) => m.descriptor.name).join(", ")}`);
  return found;
}

/** The data points of a metric, keyed by their attributes (sorted), for exact comparison. */
function points(all: MetricData[], name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of metric(all, name).dataPoints as DataPoint<number | Histogram>[]) {
    const key = Object.entries(p.attributes)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(" ");
    out[key] = typeof p.value === "number" ? p.value : p.value.count;
  }
  return out;
}

/** Sums of a histogram's points, keyed as in points(). */
function sums(all: MetricData[], name: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of metric(all, name).dataPoints as DataPoint<Histogram>[]) {
    out[`grpc.status=${String(p.attributes["grpc.status"])}`] = p.value.sum ?? Number.NaN;
  }
  return out;
}

const echo = "meshlite.echo.v1.EchoService/Echo";
const echoIdempotent = "meshlite.echo.v1.EchoService/EchoIdempotent";
const requestBytes = (message: string) =>
  toBinary(EchoRequestSchema, create(EchoRequestSchema, { message })).byteLength;
const responseBytes = (message: string, server: string, index = 0) =>
  toBinary(EchoResponseSchema, create(EchoResponseSchema, { message, server, index })).byteLength;

describe("@meshlite/opentelemetry metrics (gRFC A66)", () => {
  it("records unary calls: names, units, attributes, counts and message sizes", async () => {
    const { client, target, collect } = await setup([1]);
    for (let i = 0; i < 3; i++) await client.echo({ message: "hello" });
    const all = await collect();
    const labels = `grpc.method=${echo} grpc.target=${target}`;
    const ok = `grpc.method=${echo} grpc.status=OK grpc.target=${target}`;
    expect(points(all, "grpc.client.attempt.started")).toEqual({ [labels]: 3 });
    expect(points(all, "grpc.client.attempt.duration")).toEqual({ [ok]: 3 });
    expect(points(all, "grpc.client.call.duration")).toEqual({ [ok]: 3 });
    expect(points(all, "grpc.client.attempt.sent_total_compressed_message_size")).toEqual({ [ok]: 3 });
    expect(points(all, "grpc.client.attempt.rcvd_total_compressed_message_size")).toEqual({ [ok]: 3 });
    expect(sums(all, "grpc.client.attempt.sent_total_compressed_message_size")).toEqual({
      "grpc.status=OK": 3 * requestBytes("hello"),
    });
    const server = backends[0]?.name ?? "";
    expect(sums(all, "grpc.client.attempt.rcvd_total_compressed_message_size")).toEqual({
      "grpc.status=OK": 3 * responseBytes("hello", server),
    });
    const units = Object.fromEntries(
      all.filter((m) => m.descriptor.name.startsWith("grpc.")).map((m) => [m.descriptor.name, m.descriptor.unit]),
    );
    expect(units).toEqual({
      "grpc.client.attempt.started": "{attempt}",
      "grpc.client.attempt.duration": "s",
      "grpc.client.attempt.sent_total_compressed_message_size": "By",
      "grpc.client.attempt.rcvd_total_compressed_message_size": "By",
      "grpc.client.call.duration": "s",
    });
  });

  it("records streaming calls: sizes add up over every message of an attempt", async () => {
    const { client, target, collect } = await setup([2]);
    const messages = [];
    for await (const m of client.serverStream({ message: "s", count: 4 })) messages.push(m);
    expect(messages).toHaveLength(4);
    async function* requests() {
      for (let i = 0; i < 5; i++) yield { message: "c" };
    }
    await client.clientStream(requests());
    const all = await collect();
    const serverStream = "meshlite.echo.v1.EchoService/ServerStream";
    const clientStream = "meshlite.echo.v1.EchoService/ClientStream";
    expect(points(all, "grpc.client.call.duration")).toEqual({
      [`grpc.method=${serverStream} grpc.status=OK grpc.target=${target}`]: 1,
      [`grpc.method=${clientStream} grpc.status=OK grpc.target=${target}`]: 1,
    });
    const sent = metric(all, "grpc.client.attempt.sent_total_compressed_message_size")
      .dataPoints as DataPoint<Histogram>[];
    const rcvd = metric(all, "grpc.client.attempt.rcvd_total_compressed_message_size")
      .dataPoints as DataPoint<Histogram>[];
    const by = (ps: DataPoint<Histogram>[], method: string) =>
      ps.find((p) => p.attributes["grpc.method"] === method)?.value.sum;
    expect(by(sent, serverStream)).toBe(requestBytes("s") + 2); // + count = 4 (field 3, varint)
    expect(by(sent, clientStream)).toBe(5 * requestBytes("c"));
    const received = messages.reduce((n, m) => n + toBinary(EchoResponseSchema, m).byteLength, 0);
    expect(by(rcvd, serverStream)).toBe(received);
  });

  it("records a retried call as one call and two attempts, each with its own status", async () => {
    const { client, target, collect } = await setup([3], {
      retry: { methods: { [echoIdempotent]: { maxAttempts: 3, initialBackoffMs: 1 } } },
    });
    // Every second call the server sees fails.
    backends[0]?.setFailEvery(2, Code.Unavailable);
    await client.echoIdempotent({ message: "once" }); // server call 1: OK
    await client.echoIdempotent({ message: "retried" }); // 2: UNAVAILABLE, retried: 3: OK
    expect(backends[0]?.totalCalls()).toBe(3);
    const all = await collect();
    const labels = `grpc.method=${echoIdempotent} grpc.target=${target}`;
    const withStatus = (status: string) => `grpc.method=${echoIdempotent} grpc.status=${status} grpc.target=${target}`;
    expect(points(all, "grpc.client.attempt.started")).toEqual({ [labels]: 3 });
    expect(points(all, "grpc.client.attempt.duration")).toEqual({
      [withStatus("OK")]: 2,
      [withStatus("UNAVAILABLE")]: 1,
    });
    expect(points(all, "grpc.client.call.duration")).toEqual({ [withStatus("OK")]: 2 });
    expect(points(all, "meshlite.retries")).toEqual({
      [`grpc.method=${echoIdempotent} meshlite.endpoint=${backends[0]?.address} meshlite.retry.kind=policy`]: 1,
    });
  });

  it("records failed calls with their status, on the call and the attempt", async () => {
    const { client, target, collect } = await setup([4]);
    const error = await client.echo({ message: "x", failCode: Code.InvalidArgument }).catch((e: unknown) => e);
    expect(ConnectError.from(error).code).toBe(Code.InvalidArgument);
    const streamError = await (async () => {
      for await (const _ of client.serverStream({ message: "x", count: 2, failCode: Code.PermissionDenied })) {
      }
    })().catch((e: unknown) => e);
    expect(ConnectError.from(streamError).code).toBe(Code.PermissionDenied);
    const all = await collect();
    expect(points(all, "grpc.client.call.duration")).toEqual({
      [`grpc.method=${echo} grpc.status=INVALID_ARGUMENT grpc.target=${target}`]: 1,
      [`grpc.method=meshlite.echo.v1.EchoService/ServerStream grpc.status=PERMISSION_DENIED grpc.target=${target}`]: 1,
    });
    expect(points(all, "grpc.client.attempt.duration")).toEqual(points(all, "grpc.client.call.duration"));
  });

  it("exports the per-endpoint gauges from the channel's snapshot", async () => {
    const { client, target, collect } = await setup([5, 6]);
    for (let i = 0; i < 4; i++) await client.echo({ message: "g" });
    const all = await collect();
    const [a, b] = backends.map((x) => x.address);
    expect(points(all, "meshlite.endpoint.calls")).toEqual({
      [`grpc.target=${target} meshlite.endpoint=${a}`]: 2,
      [`grpc.target=${target} meshlite.endpoint=${b}`]: 2,
    });
    expect(points(all, "meshlite.endpoint.ready")).toEqual({
      [`grpc.target=${target} meshlite.endpoint=${a}`]: 1,
      [`grpc.target=${target} meshlite.endpoint=${b}`]: 1,
    });
    expect(Object.keys(points(all, "meshlite.endpoint.in_flight"))).toHaveLength(2);
  });
});

const byName = (spans: ReadableSpan[], name: string) => spans.filter((s) => s.name === name);

describe("@meshlite/opentelemetry tracing", () => {
  it("a span per call and per attempt; attempts are children of the call span; traceparent reaches the server", async () => {
    const { client, spans, traceparents } = await setup([7], {
      retry: { methods: { [echoIdempotent]: { maxAttempts: 3, initialBackoffMs: 1 } } },
    });
    const [first] = backends as [EchoBackend];
    // Every second call the server sees fails: the second call is retried.
    first.setFailEvery(2, Code.Unavailable);
    await client.echoIdempotent({ message: "a" });
    await client.echoIdempotent({ message: "b" });
    const finished = spans.getFinishedSpans();
    const calls = byName(finished, `Sent.${echoIdempotent}`);
    const attempts = byName(finished, echoIdempotent);
    expect(calls).toHaveLength(2);
    expect(attempts).toHaveLength(3);
    for (const call of calls) {
      expect(call.attributes).toMatchObject({
        "rpc.system": "grpc",
        "rpc.service": "meshlite.echo.v1.EchoService",
        "rpc.method": "EchoIdempotent",
        "rpc.grpc.status_code": 0,
      });
      const mine = attempts.filter((a) => a.parentSpanContext?.spanId === call.spanContext().spanId);
      expect(mine.length).toBe(call === calls[0] ? 1 : 2);
      for (const a of mine) expect(a.spanContext().traceId).toBe(call.spanContext().traceId);
    }
    const retried = attempts.filter((a) => a.attributes["rpc.grpc.status_code"] === Code.Unavailable);
    expect(retried).toHaveLength(1);
    expect(retried[0]?.attributes["server.address"]).toBe(first.host);
    expect(retried[0]?.attributes["server.port"]).toBe(first.port);
    expect(retried[0]?.attributes["grpc.previous_rpc_attempts"]).toBe(0);
    expect(attempts.map((a) => a.kind)).toEqual([2, 2, 2]); // SpanKind.CLIENT
    // Each attempt sent its own span as the parent of the server's work.
    expect(traceparents.sort()).toEqual(
      attempts.map((a) => `00-${a.spanContext().traceId}-${a.spanContext().spanId}-01`).sort(),
    );
  });

  it("the call span continues the caller's active span; a failed call's spans say so", async () => {
    const { client, spans, traceparents } = await setup([9]);
    const tracerProvider = new BasicTracerProvider();
    const outer = tracerProvider.getTracer("app").startSpan("handle-request");
    await context.with(trace.setSpan(context.active(), outer), async () => {
      await client.echo({ message: "x", failCode: Code.NotFound }).catch(() => {});
    });
    outer.end();
    const finished = spans.getFinishedSpans();
    const [call] = byName(finished, `Sent.${echo}`);
    const [attempt] = byName(finished, echo);
    expect(call?.parentSpanContext?.spanId).toBe(outer.spanContext().spanId);
    expect(call?.spanContext().traceId).toBe(outer.spanContext().traceId);
    expect(attempt?.parentSpanContext?.spanId).toBe(call?.spanContext().spanId);
    expect(attempt?.status.code).toBe(2); // SpanStatusCode.ERROR
    expect(attempt?.attributes["rpc.grpc.status_code"]).toBe(Code.NotFound);
    expect(traceparents).toEqual([`00-${outer.spanContext().traceId}-${attempt?.spanContext().spanId}-01`]);
  });
});

describe("@meshlite/opentelemetry at the proxy", () => {
  it("records server call metrics (methods as other unless named) and upstream attempts", async () => {
    const { client, backendTarget, collect } = await setup([11], {}, {});
    await client.echo({ message: "p" });
    await client.echo({ message: "p", failCode: Code.Aborted }).catch(() => {});
    const all = await collect();
    expect(points(all, "grpc.server.call.started")).toEqual({ "grpc.method=other": 2 });
    expect(points(all, "grpc.server.call.duration")).toEqual({
      "grpc.method=other grpc.status=OK": 1,
      "grpc.method=other grpc.status=ABORTED": 1,
    });
    const proxyAttempts = Object.entries(points(all, "grpc.client.attempt.duration")).filter(([k]) =>
      k.endsWith(`grpc.target=${backendTarget}`),
    );
    expect(Object.fromEntries(proxyAttempts)).toEqual({
      [`grpc.method=other grpc.status=OK grpc.target=${backendTarget}`]: 1,
      [`grpc.method=other grpc.status=ABORTED grpc.target=${backendTarget}`]: 1,
    });
  });

  it("names the methods it is told of, and continues the trace: client attempt -> proxy -> upstream attempt -> server", async () => {
    const { client, collect, spans, traceparents } = await setup([12], {}, { proxyMethods: new Set([echo]) });
    await client.echo({ message: "t" });
    expect(points(await collect(), "grpc.server.call.started")).toEqual({ [`grpc.method=${echo}`]: 1 });
    const finished = spans.getFinishedSpans();
    const server = finished.find((s) => s.kind === 1); // SpanKind.SERVER: the proxy's call span
    const attempts = byName(finished, echo).filter((s) => s.kind === 2);
    expect(server?.name).toBe(echo);
    expect(attempts).toHaveLength(2);
    const [channelAttempt, proxyAttempt] = [
      attempts.find((a) => a.parentSpanContext?.spanId !== server?.spanContext().spanId),
      attempts.find((a) => a.parentSpanContext?.spanId === server?.spanContext().spanId),
    ];
    // The proxy's span continues the channel attempt's trace context...
    expect(server?.parentSpanContext?.spanId).toBe(channelAttempt?.spanContext().spanId);
    expect(server?.spanContext().traceId).toBe(channelAttempt?.spanContext().traceId);
    // ...and the server sees the proxy's upstream attempt as its parent.
    expect(proxyAttempt?.attributes["server.address"]).toBe(backends[0]?.host);
    expect(traceparents).toEqual([
      `00-${proxyAttempt?.spanContext().traceId}-${proxyAttempt?.spanContext().spanId}-01`,
    ]);
  });
});

describe("ChannelOptions.observer", () => {
  it("rejects an observer without callStarted", () => {
    expect(() => createChannel({ target: "static:///127.0.90.10:1", observer: {} as never })).toThrow(
      /observer must be an object with a callStarted\(call\) method/,
    );
  });
  it("the proxy rejects one too", () => {
    expect(() => createProxy({ routes: [{ target: "static:///127.0.90.10:1" }], observer: {} as never })).toThrow(
      /proxy: observer must be an object with a callStarted\(call\) method/,
    );
  });
});
