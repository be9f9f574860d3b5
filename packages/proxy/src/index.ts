export type { CallProtocol } from "./call-protocol.js";
export type { Proxy } from "./create-proxy.js";
export { createProxy } from "./create-proxy.js";
export type { JsonLoggerOptions, LogLevel } from "./json-logger.js";
export { createJsonLogger } from "./json-logger.js";
export type { ProxyConfig } from "./load-config.js";
export { ConfigError, loadConfig, parseConfig } from "./load-config.js";
export type { Metrics } from "./metrics.js";
export type { ListenerTlsOptions, ProxyEngine, ProxyOptions, RouteOptions } from "./proxy-options.js";
