// meshlite: what a channel user needs. Raw HTTP/2 users (the proxy, custom
// forwarders) find the balancing core in @meshlite/pool.

// Balancers: the built-in ones, and what a custom one is written against
export type {
  BalancerName,
  LeastRequestOptions,
  MaglevOptions,
  P2cOptions,
  PickFirstOptions,
  RingHashOptions,
  RoundRobinOptions,
  WeightedRoundRobinOptions,
} from "@meshlite/balancers";
export {
  balancerNames,
  createBalancer,
  createLeastRequestBalancer,
  createMaglevBalancer,
  createP2cBalancer,
  createPickFirstBalancer,
  createRingHashBalancer,
  createRoundRobinBalancer,
  createWeightedRoundRobinBalancer,
} from "@meshlite/balancers";
export type {
  AttemptWatcher,
  BackoffOptions,
  Balancer,
  CallObserver,
  CallWatcher,
  ConnectionPolicy,
  ConnectivityState,
  DnsTarget,
  Endpoint,
  EndpointHints,
  EndpointLoad,
  HeaderReader,
  HeaderWriter,
  HostPort,
  KubernetesTarget,
  Logger,
  ObservedAttempt,
  ObservedCall,
  OrcaLoadReport,
  OverloadPenaltyOptions,
  PeakEwmaOptions,
  PickCall,
  PickCandidate,
  Resolver,
  ResolverContext,
  ResolverFactory,
  ResolverListener,
  ResolverOptions,
  ResolverOptionsByScheme,
  ServerLoad,
  StaticTarget,
  Target,
  TargetScheme,
} from "@meshlite/core";
export {
  consoleLogger,
  decodeOrcaLoadReport,
  encodeOrcaLoadReport,
  orcaHeaderName,
  orcaTrailerName,
  parseOrcaHeader,
  parseOrcaTrailer,
  parseTarget,
  registerResolver,
  silentLogger,
  TargetError,
} from "@meshlite/core";
export type {
  CallLimitsOptions,
  EndpointSnapshot,
  HealthStatus,
  LocalityBand,
  LocalityOptions,
  LocalityPreference,
  LocalitySnapshot,
  LocalityState,
  OutlierDetectionOptions,
  SlowStartOptions,
  SubsetMode,
  SubsetOptions,
  SubsetSnapshot,
} from "@meshlite/pool";
// Resolvers: targets, the DNS resolver's options, and what a custom one is written against
export type { DnsFamily, DnsResolverOptions } from "@meshlite/resolvers";
export type {
  ConnectTransportOptions,
  GrpcImplementation,
  KeepaliveOptions,
  Protocol,
  TlsOptions,
} from "@meshlite/transport";
// The channel
export type { ChannelEvent, ChannelEventHandler } from "./channel-event.js";
export type { ChannelOptions } from "./channel-options.js";
export type { Channel } from "./create-channel.js";
export { createChannel } from "./create-channel.js";
export type { HealthCheckOptions } from "./health-check.js";
export type { OutOfBandLoadReportOptions } from "./load-report-stream.js";
export type { MethodOptions } from "./method-options.js";
export type { HedgingPolicy, RetryBudget, RetryOptions, RetryPolicy } from "./retry-policy.js";
export type { ServiceConfig } from "./service-config.js";
export { ServiceConfigError } from "./service-config-values.js";
export type { ChannelSnapshot, ServiceConfigSnapshot } from "./snapshot.js";
