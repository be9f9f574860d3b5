import { assertKnownKeys } from "@meshlite/core";

/**
 * Concurrency limits (circuit breaking): how many calls the pool puts on one
 * endpoint and how many may wait for one. Past a limit a call fails at once
 * with RESOURCE_EXHAUSTED and a message naming the limit (or, for the
 * per-endpoint limit with `whenFull: "wait"`, waits for room).
 */
export interface CallLimitsOptions {
  /** Calls in flight on one endpoint; an endpoint at the limit takes no more. Default: no limit. */
  maxInFlightPerEndpoint?: number;
  /**
   * Calls waiting for an endpoint (none ready yet, or every one at
   * `maxInFlightPerEndpoint` with `whenFull: "wait"`); one more fails at once,
   * so a dead service cannot grow memory without bound. Default 10000.
   */
  maxPending?: number;
  /**
   * What a call does when every candidate is at `maxInFlightPerEndpoint`:
   * `"fail"` at once with RESOURCE_EXHAUSTED, or `"wait"` for room (up to
   * its deadline, or `waitForReadyMs` without one). Default "fail".
   */
  whenFull?: "fail" | "wait";
}

export type ResolvedCallLimits = Required<CallLimitsOptions>;

export const defaultCallLimits: ResolvedCallLimits = {
  maxInFlightPerEndpoint: Number.POSITIVE_INFINITY,
  maxPending: 10_000,
  whenFull: "fail",
};

const limitKeys = ["maxInFlightPerEndpoint", "maxPending", "whenFull"] as const;

/** Checks the options and fills in the defaults; `where` names the option in messages ("createChannel: limits"). */
export function resolveCallLimits(options: CallLimitsOptions | undefined, where: string): ResolvedCallLimits {
  if (options === undefined) return defaultCallLimits;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(
      `${where} must be an object { maxInFlightPerEndpoint, maxPending, whenFull }, got ${JSON.stringify(options)}`,
    );
  }
  assertKnownKeys(options, limitKeys, where);
  for (const key of ["maxInFlightPerEndpoint", "maxPending"] as const) {
    const value = options[key];
    if (value !== undefined && !(typeof value === "number" && Number.isInteger(value) && value >= 1)) {
      throw new TypeError(`${where}.${key} must be an integer >= 1, got ${JSON.stringify(value)}`);
    }
  }
  if (options.whenFull !== undefined && options.whenFull !== "fail" && options.whenFull !== "wait") {
    throw new TypeError(`${where}.whenFull must be "fail" or "wait", got ${JSON.stringify(options.whenFull)}`);
  }
  return { ...defaultCallLimits, ...options };
}
