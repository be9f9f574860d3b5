export type { Backoff, BackoffOptions } from "./backoff.js";
export { createBackoff, defaultBackoffOptions } from "./backoff.js";
export type { Balancer, ConnectionPolicy, EndpointLoad, PickCall, PickCandidate, ServerLoad } from "./balancer.js";
export type {
  AttemptWatcher,
  CallObserver,
  CallWatcher,
  HeaderReader,
  HeaderWriter,
  ObservedAttempt,
  ObservedCall,
} from "./call-observer.js";
export type { CallRate, CallRateOptions } from "./call-rate.js";
export { createCallRate, defaultCallRateOptions } from "./call-rate.js";
export type { ConnectivityState } from "./connectivity-state.js";
export type { Endpoint, EndpointHints } from "./endpoint.js";
export { endpointKey, formatHostPort, sameEndpoints } from "./endpoint.js";
export type { EventLoopStallStats, EventLoopStalls } from "./event-loop-stalls.js";
export { acquireEventLoopStalls } from "./event-loop-stalls.js";
export { encodeGrpcTimeout } from "./grpc-timeout.js";
export { assertKnownKeys, nearestKey } from "./known-keys.js";
export type { Logger } from "./logger.js";
export { consoleLogger, silentLogger } from "./logger.js";
export type { LoopTimeout } from "./loop-timeout.js";
export { setLoopTimeout } from "./loop-timeout.js";
export type { OrcaLoadReport } from "./orca-load-report.js";
export {
  decodeOrcaLoadReport,
  emptyOrcaLoadReport,
  encodeOrcaLoadReport,
  orcaHeaderName,
  orcaTrailerName,
  parseOrcaHeader,
  parseOrcaTrailer,
} from "./orca-load-report.js";
export type { OverloadPenalty, OverloadPenaltyOptions } from "./overload-penalty.js";
export { createOverloadPenalty, defaultOverloadPenaltyOptions } from "./overload-penalty.js";
export type { PeakEwma, PeakEwmaOptions } from "./peak-ewma.js";
export { createPeakEwma, defaultPeakEwmaOptions } from "./peak-ewma.js";
export type {
  Resolver,
  ResolverContext,
  ResolverFactory,
  ResolverListener,
  ResolverOptions,
  ResolverOptionsByScheme,
} from "./resolver.js";
export { getResolverFactory, hasResolver, registerResolver } from "./resolver-registry.js";
export type { DnsTarget, HostPort, KubernetesTarget, StaticTarget, Target, TargetScheme } from "./target.js";
export { acceptedTargetForms, parseHostPort, parseTarget, TargetError } from "./target.js";
