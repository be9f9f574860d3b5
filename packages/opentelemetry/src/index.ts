// OpenTelemetry for meshlite channels and the proxy: gRPC's metrics by their
// gRFC A66 names, per-endpoint gauges, and spans per call and attempt.
export type { MeshliteTelemetry, OpenTelemetryOptions } from "./create-opentelemetry.js";
export { createOpenTelemetry } from "./create-opentelemetry.js";
export type { Snapshotting } from "./endpoint-gauges.js";
export type { CountedEvent } from "./event-counters.js";
export { grpcStatusName } from "./grpc-status-name.js";
