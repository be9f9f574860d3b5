import { grpcStatus } from "./grpc-status.js";

/** Why no endpoint could be picked for a call. */
export type NoEndpointReason =
  | "deadline"
  | "wait-limit"
  | "fail-fast"
  | "aborted"
  | "closed"
  | "max-in-flight"
  | "max-pending";

/**
 * The status a call fails with when no endpoint could be picked, the same in
 * the channel and the proxy, as gRPC specifies it:
 *
 * - `deadline`: the call's own deadline passed while it waited for a ready
 *   endpoint: DEADLINE_EXCEEDED (gRPC fails a waiting call when its deadline
 *   is reached, with the deadline's status).
 * - `wait-limit`: a call without a deadline waited `waitForReadyMs` and no
 *   endpoint became ready: UNAVAILABLE (what gRPC answers when there is
 *   nothing to send a call to, as a fail-fast call does at once).
 * - `fail-fast`: a call that does not wait for ready (gRPC's default, a
 *   method config's `waitForReady: false`) found every endpoint failing: UNAVAILABLE.
 * - `closed`: the pool is closing: UNAVAILABLE.
 * - `aborted`: the caller canceled while waiting: CANCELED.
 * - `max-in-flight`, `max-pending`: a concurrency limit (see CallLimitsOptions)
 *   refused the call: RESOURCE_EXHAUSTED.
 */
export function noEndpointStatus(reason: NoEndpointReason): number {
  switch (reason) {
    case "deadline":
      return grpcStatus.deadlineExceeded;
    case "aborted":
      return grpcStatus.canceled;
    case "max-in-flight":
    case "max-pending":
      return grpcStatus.resourceExhausted;
    default:
      return grpcStatus.unavailable;
  }
}

/** No endpoint could be picked; the message names the target and the last error. */
export class NoEndpointError extends Error {
  override name = "NoEndpointError";
  /** The gRPC status code to fail the call with (see noEndpointStatus). */
  readonly code: number;
  constructor(
    message: string,
    readonly reason: NoEndpointReason,
  ) {
    super(message);
    this.code = noEndpointStatus(reason);
  }
}
