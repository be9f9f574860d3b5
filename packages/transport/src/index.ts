export {
  CallNotSentError,
  isCallNotSent,
  isConnectionLost,
} from "./call-not-sent-error.js";
export { cancelStream } from "./cancel-stream.js";
export type {
  ConnectTransportOptions,
  EndpointTransportOptions,
  GrpcImplementation,
  Protocol,
} from "./endpoint-transport.js";
export { connectTransportOptionNames, createEndpointTransport, runsOnFrameEngine } from "./endpoint-transport.js";
export type {
  Http2Connection,
  Http2ConnectionEvent,
  Http2ConnectionOptions,
  Http2SessionManager,
  KeepaliveOptions,
} from "./http2-connection.js";
export { createHttp2Connection } from "./http2-connection.js";
// lean gRPC transport: createGrpcTransport of connect-node at a lower CPU cost per call
export { createLeanGrpcTransport } from "./lean-grpc-transport.js";
export type { LeanGrpcTransportOptions, LeanSessionManager } from "./lean-grpc-transport-options.js";
export type { ResetBudget, ResetBudgetActions } from "./reset-budget.js";
export { createResetBudget } from "./reset-budget.js";
export type { RawFields } from "./response-field.js";
export { rawFields, responseField } from "./response-field.js";
export type {
  ClientSessionLike,
  ConnectionEvent,
  EndpointConnection,
  SessionConnection,
  SessionConnectionOptions,
  SessionDriver,
} from "./session-connection.js";
export { createSessionConnection } from "./session-connection.js";
export type { TlsOptions } from "./tls-options.js";
