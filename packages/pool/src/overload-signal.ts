import { assertKnownKeys, type OverloadPenaltyOptions } from "@meshlite/core";
import { grpcStatus } from "./grpc-status.js";

/**
 * A server's `grpc-retry-pushback-ms`: the delay in ms it asks for, -1 for
 * "do not retry" (a negative or malformed value, as gRPC reads it), undefined
 * when there is none.
 */
export function parsePushbackMs(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const trimmed = value.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : -1;
}

/**
 * Whether an answer says the endpoint is shedding load, in the channel and
 * the proxy alike: RESOURCE_EXHAUSTED, HTTP 429 or 503 without a gRPC or
 * Connect status (a Connect or gRPC-web server, or a load balancer in front
 * of it, refusing the call), or a `grpc-retry-pushback-ms` header. Such
 * answers feed the overload penalty, not outlier ejection.
 */
export function isOverloadAnswer(
  code: number,
  httpStatus: number | undefined,
  pushbackMs: number | undefined,
): boolean {
  return code === grpcStatus.resourceExhausted || httpStatus === 429 || httpStatus === 503 || pushbackMs !== undefined;
}

const penaltyKeys = ["factor", "decayMs"] as const;

/** Checks the `overloadPenalty` option; `where` names it in messages ("createChannel: overloadPenalty"). */
export function resolveOverloadPenalty(
  options: OverloadPenaltyOptions | false | undefined,
  where: string,
): OverloadPenaltyOptions | false {
  if (options === false) return false;
  if (options === undefined) return {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`${where} must be an object { factor, decayMs } or false, got ${JSON.stringify(options)}`);
  }
  assertKnownKeys(options, penaltyKeys, where);
  if (
    options.factor !== undefined &&
    !(typeof options.factor === "number" && options.factor >= 0 && Number.isFinite(options.factor))
  ) {
    throw new TypeError(`${where}.factor must be a number >= 0, got ${JSON.stringify(options.factor)}`);
  }
  if (
    options.decayMs !== undefined &&
    !(typeof options.decayMs === "number" && options.decayMs > 0 && Number.isFinite(options.decayMs))
  ) {
    throw new TypeError(
      `${where}.decayMs must be a number of milliseconds > 0, got ${JSON.stringify(options.decayMs)}`,
    );
  }
  return options;
}
