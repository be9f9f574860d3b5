import type { ConnectivityState } from "@meshlite/core";

/**
 * What a channel reports through `onEvent`: wire it to logs, metrics or
 * traces. Handlers run synchronously on the call path; keep them cheap.
 */
export type ChannelEvent =
  | { type: "endpoint-added"; address: string }
  /** The endpoint left the set (or is terminating): it drains, then closes. */
  | { type: "endpoint-removed"; address: string }
  | { type: "endpoint-state"; address: string; state: ConnectivityState; error?: Error }
  | {
      type: "endpoint-ejected";
      address: string;
      reason: "consecutive-failures" | "failure-rate";
      durationMs: number;
    }
  | { type: "endpoint-returned"; address: string }
  | { type: "endpoint-health"; address: string; status: "serving" | "not-serving" | "unimplemented" }
  | {
      type: "retry";
      /** `package.Service/Method` */
      method: string;
      /** The attempt that failed, 1-based. */
      attempt: number;
      /** The status code of the failed attempt. */
      code: number;
      address: string;
      /** Why: a policy retry, a call that was never sent, or a hedged copy. */
      kind: "policy" | "not-sent" | "hedge";
      delayMs: number;
    }
  | { type: "resolver-error"; error: Error };

/** Receives channel events. */
export type ChannelEventHandler = (event: ChannelEvent) => void;
