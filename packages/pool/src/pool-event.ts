import type { ConnectivityState } from "@meshlite/core";

/**
 * What a pool reports through `onEvent`: wire it to logs, metrics or
 * traces. Handlers run synchronously on the call path; keep them cheap.
 */
export type PoolEvent =
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
  | { type: "resolver-error"; error: Error }
  /** The locality policy changed state: preferring local endpoints, spilling over to `zones`, or off, and why. */
  | { type: "locality"; state: "preferring" | "spilling" | "off"; reason: string; zones: string[] }
  /**
   * A concurrency limit refused calls (or, with `whenFull: "wait"`, held them
   * back): reported at most once a second per limit, with the calls refused
   * since the last report.
   */
  | { type: "limit-reached"; limit: "maxInFlightPerEndpoint" | "maxPending"; max: number; calls: number };

/** Receives pool events. */
export type PoolEventHandler = (event: PoolEvent) => void;
