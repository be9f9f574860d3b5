import { registerResolver } from "@meshlite/core";
import { createDnsResolver, createStaticResolver } from "@meshlite/resolvers";

registerResolver("static", createStaticResolver);
registerResolver("dns", createDnsResolver);

export type { BalancerName, LeastRequestOptions } from "@meshlite/balancers";
export {
  balancerNames,
  createBalancer,
  createLeastRequestBalancer,
  createP2cBalancer,
  createPickFirstBalancer,
  createRoundRobinBalancer,
} from "@meshlite/balancers";
export type {
  Balancer,
  Endpoint,
  EndpointLoad,
  Logger,
  PickCandidate,
  Resolver,
  ResolverContext,
  ResolverListener,
  Target,
} from "@meshlite/core";
export { parseTarget, registerResolver, TargetError } from "@meshlite/core";
export type {
  Http2Connection,
  Http2ConnectionOptions,
  KeepaliveOptions,
  Protocol,
  TlsOptions,
} from "@meshlite/transport";
export { CallNotSentError, createHttp2Connection, isCallNotSent } from "@meshlite/transport";
export type { ChannelEvent, ChannelEventHandler } from "./channel-event.js";
export type { ChannelOptions } from "./channel-options.js";
export type { Channel } from "./create-channel.js";
export { createChannel } from "./create-channel.js";
// Codes counted as an endpoint's failures, for raw HTTP/2 users of the pool.
export { endpointFailureCodes } from "./endpoint-failure-codes.js";
export type { EndpointPool, EndpointPoolOptions, HealthWatcher } from "./endpoint-pool.js";
// The balancing core without Connect's message layer, for the proxy and other
// raw HTTP/2 users: endpoint set, connections, load accounting, picks.
export { createEndpointPool, NoEndpointError } from "./endpoint-pool.js";
export type { HealthCheckOptions } from "./health-check.js";
export type { OutlierDetectionOptions, ResolvedOutlierDetection } from "./outlier-detection.js";
export { resolveOutlierDetection } from "./outlier-detection.js";
export type { HedgingPolicy, RetryBudget, RetryOptions, RetryPolicy } from "./retry-policy.js";
export type { ChannelSnapshot, EndpointSnapshot } from "./snapshot.js";
export type { CallOutcome, HealthStatus, Subchannel } from "./subchannel.js";
