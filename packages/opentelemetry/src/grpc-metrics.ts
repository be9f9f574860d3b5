import type { Attributes, Counter, Histogram, Meter } from "@opentelemetry/api";

/** gRFC A66's latency buckets, seconds. */
const latencyBuckets = [
  0, 0.00001, 0.00005, 0.0001, 0.0003, 0.0006, 0.0008, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.01, 0.013,
  0.016, 0.02, 0.025, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3, 0.4, 0.5, 0.65, 0.8, 1, 2, 5, 10,
  20, 50, 100,
];
/** gRFC A66's size buckets, bytes. */
const sizeBuckets = [
  0, 1024, 2048, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864, 268435456, 1073741824, 4294967296,
];

/** The instruments of gRFC A66, by their names and units. */
export interface GrpcMetrics {
  attemptStarted: Counter<Attributes>;
  attemptDuration: Histogram<Attributes>;
  attemptSentSize: Histogram<Attributes>;
  attemptRcvdSize: Histogram<Attributes>;
  callDuration: Histogram<Attributes>;
  serverCallStarted: Counter<Attributes>;
  serverCallDuration: Histogram<Attributes>;
}

export function createGrpcMetrics(meter: Meter): GrpcMetrics {
  const seconds = (name: string, description: string) =>
    meter.createHistogram(name, { description, unit: "s", advice: { explicitBucketBoundaries: latencyBuckets } });
  const bytes = (name: string, description: string) =>
    meter.createHistogram(name, { description, unit: "By", advice: { explicitBucketBoundaries: sizeBuckets } });
  return {
    attemptStarted: meter.createCounter("grpc.client.attempt.started", {
      description: "Number of client call attempts started.",
      unit: "{attempt}",
    }),
    attemptDuration: seconds(
      "grpc.client.attempt.duration",
      "End-to-end time taken to complete a client call attempt.",
    ),
    attemptSentSize: bytes(
      "grpc.client.attempt.sent_total_compressed_message_size",
      "Compressed message bytes sent per client call attempt.",
    ),
    attemptRcvdSize: bytes(
      "grpc.client.attempt.rcvd_total_compressed_message_size",
      "Compressed message bytes received per call attempt.",
    ),
    callDuration: seconds(
      "grpc.client.call.duration",
      "Time taken by gRPC to complete an RPC from application's perspective.",
    ),
    serverCallStarted: meter.createCounter("grpc.server.call.started", {
      description: "Number of server calls started.",
      unit: "{call}",
    }),
    serverCallDuration: seconds(
      "grpc.server.call.duration",
      "End-to-end time taken to complete a call from server transport's perspective.",
    ),
  };
}
