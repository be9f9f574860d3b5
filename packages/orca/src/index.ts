// ORCA load reports written by servers: what meshlite's weighted round robin
// (and gRPC's) balance by.
export type { GrpcJsCallMetricsRecorder } from "./grpc-js.js";
export { recordOnGrpcJsCall } from "./grpc-js.js";
export type { OrcaInterceptorOptions } from "./orca-interceptor.js";
export { createOrcaInterceptor } from "./orca-interceptor.js";
export type { ServerLoad, ServerLoadOptions } from "./server-load.js";
export { createServerLoad } from "./server-load.js";
