// The HTTP/2 connection to one endpoint, without Connect: what the balancing
// core (@meshlite/pool) and raw HTTP/2 users need. Importing this entry loads
// no Connect code; the package's main entry adds the Connect transports.
export { CallNotSentError, isCallNotSent, isConnectionLost } from "./call-not-sent-error.js";
export type { FrameEngineSettings } from "./frame-engine-connection.js";
export { createFrameEngineConnection } from "./frame-engine-connection.js";
export type { H2Headers, H2Stream, H2StreamClose, H2StreamConnection, H2StreamEvents } from "./h2-stream.js";
export type {
  Http2Connection,
  Http2ConnectionEvent,
  Http2ConnectionOptions,
  Http2SessionManager,
  KeepaliveOptions,
} from "./http2-connection.js";
export { createHttp2Connection } from "./http2-connection.js";
export { nodeH2Stream, nodeH2StreamConnection } from "./node-h2-stream.js";
export type { ResetBudget, ResetBudgetActions } from "./reset-budget.js";
export { createResetBudget } from "./reset-budget.js";
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
