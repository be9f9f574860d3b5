import { registerResolver } from "@meshlite/core";
import { createStaticResolver } from "@meshlite/resolvers";

registerResolver("static", createStaticResolver);

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
export type { KeepaliveOptions, Protocol, TlsOptions } from "@meshlite/transport";
export type { ChannelOptions } from "./channel-options.js";
export type { Channel } from "./create-channel.js";
export { createChannel } from "./create-channel.js";
export type { ChannelSnapshot, EndpointSnapshot } from "./snapshot.js";
