// The balancing core without Connect's message layer: endpoint set from a
// resolver, one HTTP/2 connection per endpoint, endpoint policies, load
// accounting and the pick. The channel (meshlite) and the proxy build on it.

export type { ApertureShare } from "./aperture.js";
export { apertureShares, rendezvousSubset, ringOrder, ringPhase } from "./aperture.js";
export type { CallLimitsOptions, ResolvedCallLimits } from "./call-limits.js";
export { defaultCallLimits, resolveCallLimits } from "./call-limits.js";
export type { ClientLocality } from "./client-locality.js";
export { clientLocalityOf, nodeNameEnv, zoneEnv } from "./client-locality.js";
export type { ConnectionManager } from "./connection-manager.js";
export { createConnectionManager } from "./connection-manager.js";
export type { PoolOptions } from "./create-pool.js";
export { createPool } from "./create-pool.js";
export { createDrainingPolicy } from "./draining-policy.js";
export { endpointFailureCodes } from "./endpoint-failure-codes.js";
export type {
  EndpointPolicy,
  EndpointPolicyName,
  PolicyContext,
  PolicyHooks,
  PolicyPipeline,
} from "./endpoint-policy.js";
export { createPolicyPipeline, endpointPolicyOrder } from "./endpoint-policy.js";
export type { EndpointPool, EndpointPoolOptions } from "./endpoint-pool.js";
export { createEndpointPool } from "./endpoint-pool.js";
export { withEndpointZones } from "./endpoint-zones.js";
export { grpcStatus } from "./grpc-status.js";
export type { HealthWatcher } from "./health-policy.js";
export { createHealthPolicy } from "./health-policy.js";
export type { InFlightCalls } from "./in-flight-calls.js";
export { createInFlightCalls } from "./in-flight-calls.js";
export { validateKeepalive } from "./keepalive-options.js";
export { recordLoadReport } from "./load-reports.js";
export type { LocalityBand, LocalityOptions, LocalityPreference, ResolvedLocality } from "./locality-options.js";
export { resolveLocality } from "./locality-options.js";
export type { LocalityPolicy, LocalitySnapshot, LocalityState } from "./locality-policy.js";
export { createLocalityPolicy } from "./locality-policy.js";
export type { NoEndpointReason } from "./no-endpoint-error.js";
export { NoEndpointError, noEndpointStatus } from "./no-endpoint-error.js";
export { maxNotSentResends } from "./not-sent-resends.js";
export type { OutlierDetectionOptions, OutlierDetector, ResolvedOutlierDetection } from "./outlier-detection.js";
export { createOutlierDetector, resolveOutlierDetection } from "./outlier-detection.js";
export { isOverloadAnswer, parsePushbackMs, resolveOverloadPenalty } from "./overload-signal.js";
export { createPanicPolicy } from "./panic-mode.js";
export type { PoolEvent, PoolEventHandler } from "./pool-event.js";
export { createReadyPolicy } from "./ready-policy.js";
export type { ResolvedSlowStart, SlowStartOptions, SlowStartPolicy } from "./slow-start.js";
export { createSlowStartPolicy, resolveSlowStart, slowStartFactor } from "./slow-start.js";
export type { EndpointSnapshot, PoolSnapshot } from "./snapshot.js";
export type { CallOutcome, HealthStatus, Subchannel, SubchannelOptions } from "./subchannel.js";
export { createSubchannel } from "./subchannel.js";
export type { ResolvedSubset, SubsetOptions } from "./subset-options.js";
export { podIpEnv, resolveSubset } from "./subset-options.js";
export type { ConnectionFilter, SubsetMode, SubsetPolicy, SubsetSnapshot } from "./subset-policy.js";
export { createSubsetPolicy } from "./subset-policy.js";
