import type { DescMethod } from "@bufbuild/protobuf";
import type { Code } from "@connectrpc/connect";
import { assertKnownKeys } from "@meshlite/core";
import type { MethodOptions } from "./method-options.js";
import {
  createRetryPolicyLookup,
  isIdempotent,
  type ResolvedRetryPolicy,
  type RetryOptions,
  validateHedging,
} from "./retry-policy.js";

/** A hedging policy with every field filled in. */
export interface ResolvedHedging {
  readonly delayMs: number;
  readonly maxAttempts: number;
  readonly nonFatalCodes: readonly Code[];
}

/** What the call path needs to know of a method, looked up once per method. */
export interface MethodSettings {
  /** Retry policy; undefined: no retries by policy (calls never sent are still resent). */
  readonly retry: ResolvedRetryPolicy | undefined;
  /** Hedging of unary calls, instead of `retry`. */
  readonly hedging: ResolvedHedging | undefined;
  /** Deadline of calls that set none, ms; undefined or 0 for none. */
  readonly timeoutMs: number | undefined;
  /** The method's own timeout (MethodOptions), which also caps a caller's longer one; undefined or 0 for none. */
  readonly maxTimeoutMs: number | undefined;
  /** Fail at once when every endpoint is failing instead of waiting (waitForReady false). */
  readonly failFast: boolean;
}

export interface MethodSettingsOptions {
  retry?: RetryOptions;
  methods?: Record<string, MethodOptions>;
  defaultTimeoutMs?: number;
}

const methodOptionKeys = ["timeoutMs", "waitForReady", "hedging"];

/**
 * Validates the options and returns the lookup of a method's settings,
 * cached by method: the per-call cost is one WeakMap read.
 */
export function createMethodSettings(options: MethodSettingsOptions): (method: DescMethod) => MethodSettings {
  validateMethods(options.methods);
  const policyOf = createRetryPolicyLookup(options.retry);
  const cache = new WeakMap<DescMethod, MethodSettings>();
  const methods = options.methods ?? {};
  return (method) => {
    let settings = cache.get(method);
    if (settings === undefined) {
      const service = method.parent.typeName;
      const own = methods[`${service}/${method.name}`] ?? methods[service] ?? methods[""] ?? {};
      const retry = policyOf(method);
      settings = {
        retry,
        hedging: hedgingOf(own, retry, options.retry, method),
        timeoutMs: own.timeoutMs ?? options.defaultTimeoutMs,
        maxTimeoutMs: own.timeoutMs,
        failFast: own.waitForReady === false,
      };
      cache.set(method, settings);
    }
    return settings;
  };
}

function hedgingOf(
  own: MethodOptions,
  retry: ResolvedRetryPolicy | undefined,
  retryOptions: RetryOptions | undefined,
  method: DescMethod,
): ResolvedHedging | undefined {
  if (method.methodKind !== "unary" || own.hedging === false) return undefined;
  // Channel-wide hedging: idempotent methods that have a retry policy (whose codes are the non-fatal ones).
  const policy = own.hedging ?? (retry !== undefined && isIdempotent(method) ? retryOptions?.hedging : undefined);
  if (policy === undefined) return undefined;
  return {
    delayMs: policy.delayMs,
    maxAttempts: policy.maxAttempts ?? 2,
    nonFatalCodes: policy.nonFatalCodes ?? retry?.retryableCodes ?? [],
  };
}

function validateMethods(methods: Record<string, MethodOptions> | undefined): void {
  if (methods === undefined) return;
  if (typeof methods !== "object" || methods === null) {
    throw new TypeError(
      'createChannel: methods must be an object keyed by "package.Service/Method", "package.Service" or ""',
    );
  }
  for (const [key, m] of Object.entries(methods)) {
    const where = `createChannel: methods[${JSON.stringify(key)}]`;
    if (typeof m !== "object" || m === null)
      throw new TypeError(`${where} must be an object { timeoutMs, waitForReady, hedging }`);
    assertKnownKeys(m, methodOptionKeys, where);
    if (
      m.timeoutMs !== undefined &&
      !(typeof m.timeoutMs === "number" && m.timeoutMs >= 0 && Number.isFinite(m.timeoutMs))
    ) {
      throw new TypeError(`${where}.timeoutMs must be a non-negative number of ms, got ${String(m.timeoutMs)}`);
    }
    if (m.waitForReady !== undefined && typeof m.waitForReady !== "boolean") {
      throw new TypeError(`${where}.waitForReady must be true or false, got ${String(m.waitForReady)}`);
    }
    if (m.hedging !== undefined && m.hedging !== false)
      validateHedging(m.hedging, `methods[${JSON.stringify(key)}].hedging`);
  }
}

/**
 * The timeout of a call: the caller's, capped by the method's own (as gRPC's
 * method config `timeout` does); without the caller's, the method's or the
 * channel's default. Runs per call: no allocation.
 */
export function callTimeoutMs(timeoutMs: number | undefined, settings: MethodSettings): number | undefined {
  if (timeoutMs === undefined) return settings.timeoutMs;
  const cap = settings.maxTimeoutMs;
  if (cap === undefined || cap <= 0) return timeoutMs;
  // A caller's 0 or less turns the channel's default off (Connect's rule), not the method's cap.
  return timeoutMs <= 0 || cap < timeoutMs ? cap : timeoutMs;
}
