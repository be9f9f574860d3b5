import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";

/** How a method's calls are retried, in the spirit of gRPC's retry policy. */
export interface RetryPolicy {
  /** Attempts in all, the first included; 1 to 5. Default 3. */
  maxAttempts?: number;
  /** Delay before the first retry. Default 100 ms. */
  initialBackoffMs?: number;
  /** Upper bound of the delay. Default 2000 ms. */
  maxBackoffMs?: number;
  /** Factor applied to the delay after each retry. Default 2. */
  backoffMultiplier?: number;
  /** Random spread of each delay, as a fraction of it. Default 0.2. */
  jitter?: number;
  /** Status codes that are retried. Default [Code.Unavailable]. */
  retryableCodes?: Code[];
}

/** Retry throttling: gRPC's token bucket, shared by all calls of a channel. */
export interface RetryBudget {
  /**
   * Bucket size. A failed attempt takes a token; retries stop while half or
   * fewer remain. Default 50: a pod that crashes with a few dozen calls in
   * flight does not empty it (at 10, five failures at once stopped retries).
   */
  maxTokens?: number;
  /** Tokens a successful call puts back. Default 0.1. */
  tokenRatio?: number;
}

/** Hedging: send a copy of an idempotent unary call if the first has not answered in time. */
export interface HedgingPolicy {
  /** Wait this long for an answer before sending the next copy. */
  delayMs: number;
  /** Copies in all, the first included; 2 to 5. Default 2. */
  maxAttempts?: number;
  /**
   * Status codes after which the other copies go on; any other ends the call
   * at once. Default: the method's retry policy's `retryableCodes`
   * (UNAVAILABLE), none for a method without one.
   */
  nonFatalCodes?: Code[];
}

/** Retry options of a channel. */
export interface RetryOptions {
  /**
   * Policy for methods whose descriptor says they are safe to repeat
   * (`idempotency_level` NO_SIDE_EFFECTS or IDEMPOTENT); `false` turns it off.
   * Default: retry UNAVAILABLE, 3 attempts.
   */
  idempotent?: RetryPolicy | false;
  /**
   * Policies by `package.Service/Method`, `package.Service` or "" (every
   * method), the most specific first, overriding the idempotent default; setting one for a method that has side effects says
   * you know retrying it is safe. `false` turns retries off for it.
   */
  methods?: Record<string, RetryPolicy | false>;
  /** Retry throttling; `false` turns it off. Default { maxTokens: 50, tokenRatio: 0.1 }. */
  budget?: RetryBudget | false;
  /** Hedging of idempotent unary calls. Default: off. */
  hedging?: HedgingPolicy;
}

/** A policy with every field filled in. */
export type ResolvedRetryPolicy = Required<RetryPolicy>;

export const defaultRetryPolicy: ResolvedRetryPolicy = {
  maxAttempts: 3,
  initialBackoffMs: 100,
  maxBackoffMs: 2000,
  backoffMultiplier: 2,
  jitter: 0.2,
  retryableCodes: [Code.Unavailable],
};

const maxAttemptsCap = 5;

/** Finds the policy of a method: by method name, by service name, then the idempotent default. */
export function createRetryPolicyLookup(options: RetryOptions = {}) {
  validateRetryOptions(options);
  const cache = new WeakMap<DescMethod, ResolvedRetryPolicy | undefined>();
  return function policyOf(method: DescMethod): ResolvedRetryPolicy | undefined {
    if (cache.has(method)) return cache.get(method);
    const byMethod = options.methods?.[methodName(method)];
    const byService = options.methods?.[method.parent.typeName];
    const chosen =
      byMethod ?? byService ?? options.methods?.[""] ?? (isIdempotent(method) ? (options.idempotent ?? {}) : false);
    const policy = chosen === false ? undefined : resolve(chosen);
    cache.set(method, policy);
    return policy;
  };
}

/** `package.Service/Method`, as policies and events name a method. */
export function methodName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}

/** Whether a policy retries this error. */
export function isRetryable(policy: ResolvedRetryPolicy, error: unknown): error is ConnectError {
  return error instanceof ConnectError && policy.retryableCodes.includes(error.code);
}

export function isIdempotent(method: DescMethod): boolean {
  return (
    method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
    method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT
  );
}

function resolve(policy: RetryPolicy): ResolvedRetryPolicy {
  const resolved = { ...defaultRetryPolicy, ...policy };
  resolved.maxAttempts = Math.min(resolved.maxAttempts, maxAttemptsCap);
  return resolved;
}

function validateRetryOptions(options: RetryOptions) {
  const policies = [options.idempotent, ...Object.values(options.methods ?? {})];
  for (const policy of policies) {
    if (policy === undefined || policy === false) continue;
    const { maxAttempts } = policy;
    if (
      maxAttempts !== undefined &&
      (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > maxAttemptsCap)
    ) {
      throw new TypeError(
        `createChannel: retry maxAttempts must be an integer from 1 to 5, got ${String(maxAttempts)}`,
      );
    }
    for (const key of ["initialBackoffMs", "maxBackoffMs", "backoffMultiplier", "jitter"] as const) {
      const value = policy[key];
      if (value !== undefined && !(typeof value === "number" && value >= 0 && Number.isFinite(value))) {
        throw new TypeError(`createChannel: retry ${key} must be a non-negative number, got ${String(value)}`);
      }
    }
  }
  if (options.hedging !== undefined) validateHedging(options.hedging, "retry.hedging");
}

/** Checks a hedging policy; `name` says where it is in the options. */
export function validateHedging(hedging: HedgingPolicy, name: string): void {
  if (!(typeof hedging.delayMs === "number" && hedging.delayMs >= 0)) {
    throw new TypeError(`createChannel: ${name}.delayMs must be a non-negative number of milliseconds`);
  }
  const n = hedging.maxAttempts ?? 2;
  if (!Number.isInteger(n) || n < 2 || n > maxAttemptsCap) {
    throw new TypeError(`createChannel: ${name}.maxAttempts must be an integer from 2 to 5, got ${String(n)}`);
  }
  const codes = hedging.nonFatalCodes;
  if (codes !== undefined && !(Array.isArray(codes) && codes.every((c) => Number.isInteger(c) && c >= 1 && c <= 16))) {
    throw new TypeError(`createChannel: ${name}.nonFatalCodes must be a list of status codes (1 to 16)`);
  }
}

/** The delay before retry number `retry` (1-based), with jitter. */
export function retryDelay(policy: ResolvedRetryPolicy, retry: number, random = Math.random): number {
  const base = Math.min(policy.initialBackoffMs * policy.backoffMultiplier ** (retry - 1), policy.maxBackoffMs);
  return Math.max(0, Math.round(base * (1 + policy.jitter * (random() * 2 - 1))));
}

/** gRPC retry throttling: retries are allowed while more than half the tokens remain. */
export interface RetryThrottle {
  allowRetry(): boolean;
  onFailure(): void;
  onSuccess(): void;
}

export function createRetryThrottle(budget: RetryBudget | false | undefined): RetryThrottle {
  if (budget === false) {
    return { allowRetry: () => true, onFailure() {}, onSuccess() {} };
  }
  const maxTokens = budget?.maxTokens ?? 50;
  const tokenRatio = budget?.tokenRatio ?? 0.1;
  let tokens = maxTokens;
  return {
    allowRetry: () => tokens > maxTokens / 2,
    onFailure() {
      tokens = Math.max(0, tokens - 1);
    },
    onSuccess() {
      tokens = Math.min(maxTokens, tokens + tokenRatio);
    },
  };
}
