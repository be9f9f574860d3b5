import { grpcStatus } from "./grpc-status.js";

/**
 * Status codes that say the endpoint, not the call, is at fault: they count
 * as the endpoint's failures for outlier detection (in the channel and the
 * proxy). UNAVAILABLE, INTERNAL, UNKNOWN and DATA_LOSS.
 */
export const endpointFailureCodes: ReadonlySet<number> = new Set([
  grpcStatus.unavailable,
  grpcStatus.internal,
  grpcStatus.unknown,
  grpcStatus.dataLoss,
]);
