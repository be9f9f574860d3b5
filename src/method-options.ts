import type { HedgingPolicy } from "./retry-policy.js";

/**
 * Options of the calls of one method, one service or every method (gRPC's
 * method config), under ChannelOptions.methods. The most specific key that
 * exists decides for a call, as a whole: `package.Service/Method`, then
 * `package.Service`, then "" (every method); fields it leaves out take the
 * channel-wide option.
 */
export interface MethodOptions {
  /**
   * Deadline of calls that set none, in ms, and the most a caller's own may be
   * (gRPC's method config `timeout`: the shorter wins); 0: none. Default: the
   * channel's defaultTimeoutMs for calls that set none, no cap.
   */
  timeoutMs?: number;
  /**
   * `true`: a call waits for a ready endpoint until its deadline (or
   * waitForReadyMs without one). `false`: it waits only while an endpoint is
   * connecting or the target is still resolving, and fails at once with
   * UNAVAILABLE when every endpoint is failing (gRPC's fail-fast). Default true.
   */
  waitForReady?: boolean;
  /**
   * Hedging of this method's unary calls, in place of retries; `false` turns
   * the channel-wide `retry.hedging` off for it. Default: `retry.hedging`
   * for idempotent methods.
   */
  hedging?: HedgingPolicy | false;
}
