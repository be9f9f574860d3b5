// lean gRPC transport (issue 7)
export type { LeanGrpcTransportOptions, LeanSessionManager } from "./lean-grpc-transport.js";
export { createLeanGrpcTransport } from "./lean-grpc-transport.js";
