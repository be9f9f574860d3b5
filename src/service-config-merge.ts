import type { Balancer } from "@meshlite/core";
import type { ChannelOptions } from "./channel-options.js";
import type { MethodOptions } from "./method-options.js";
import type { RetryPolicy } from "./retry-policy.js";
import type { ServiceConfigOptions } from "./service-config.js";

/** The options a channel runs with, and what the explicit options overrode. */
export interface MergedOptions {
  readonly options: ChannelOptions;
  /** One line per conflict: the explicit option and the config value it won over. */
  readonly conflicts: string[];
}

/**
 * Lays a translated service config under the explicit options: an option
 * given explicitly wins; where both give the same thing with different
 * values, the conflict is listed (the channel logs it as a warning). `source`
 * names the config in those lines ("serviceConfig", "the DNS service config").
 */
export function mergeServiceConfig(
  explicit: ChannelOptions,
  config: ServiceConfigOptions | undefined,
  source: string,
): MergedOptions {
  if (config === undefined) return { options: explicit, conflicts: [] };
  const conflicts: string[] = [];
  const conflict = (option: string, mine: unknown, path: string, theirs: unknown) => {
    if (!same(mine, theirs)) {
      conflicts.push(`option ${option} ${describe(mine)} wins over ${source} ${path} ${describe(theirs)}`);
    }
  };
  const out: ChannelOptions = { ...explicit };

  if (config.balancer !== undefined) {
    if (explicit.balancer === undefined) out.balancer = config.balancer;
    else conflict("balancer", explicit.balancer, config.balancerSource ?? "loadBalancingConfig", config.balancer);
  }
  for (const key of ["readMaxBytes", "writeMaxBytes", "outOfBandLoadReports", "healthCheck"] as const) {
    const theirs = config[key];
    if (theirs === undefined) continue;
    if (explicit[key] === undefined) (out as unknown as Record<string, unknown>)[key] = theirs;
    else conflict(key, explicit[key], pathOf(key), theirs);
  }

  const retry = config.retry;
  if (retry !== undefined) {
    const mine = explicit.retry ?? {};
    const methods: Record<string, RetryPolicy | false> = { ...retry.methods };
    for (const [key, policy] of Object.entries(mine.methods ?? {})) {
      if (key in methods)
        conflict(`retry.methods[${JSON.stringify(key)}]`, policy, `retryPolicy of ${nameOf(key)}`, methods[key]);
      methods[key] = policy;
    }
    out.retry = { ...mine, ...(retry.methods || mine.methods ? { methods } : {}) };
    if (retry.budget !== undefined) {
      if (mine.budget === undefined) out.retry.budget = retry.budget;
      else conflict("retry.budget", mine.budget, "retryThrottling", retry.budget);
    }
  }

  if (config.methods !== undefined) {
    const methods: Record<string, MethodOptions> = {};
    for (const [key, theirs] of Object.entries(config.methods)) {
      const merged: MethodOptions = { ...theirs };
      // The config's default timeout for every method is the channel's defaultTimeoutMs.
      if (key === "" && theirs.timeoutMs !== undefined && explicit.defaultTimeoutMs !== undefined) {
        conflict(
          "defaultTimeoutMs",
          explicit.defaultTimeoutMs,
          "timeout of the default method config {}",
          theirs.timeoutMs,
        );
        delete merged.timeoutMs;
      }
      methods[key] = merged;
    }
    for (const [key, mine] of Object.entries(explicit.methods ?? {})) {
      const theirs = methods[key];
      if (theirs !== undefined) {
        for (const field of Object.keys(mine) as (keyof MethodOptions)[]) {
          if (theirs[field] !== undefined) {
            conflict(
              `methods[${JSON.stringify(key)}].${field}`,
              mine[field],
              `methodConfig of ${nameOf(key)}`,
              theirs[field],
            );
          }
        }
      }
      methods[key] = { ...theirs, ...mine };
    }
    out.methods = methods;
  }
  return { options: out, conflicts };
}

function pathOf(key: "readMaxBytes" | "writeMaxBytes" | "outOfBandLoadReports" | "healthCheck"): string {
  switch (key) {
    case "readMaxBytes":
      return "maxResponseMessageBytes";
    case "writeMaxBytes":
      return "maxRequestMessageBytes";
    case "outOfBandLoadReports":
      return "weighted_round_robin.enableOobLoadReport";
    case "healthCheck":
      return "healthCheckConfig";
  }
}

/** A method key as a gRPC `name`. */
function nameOf(key: string): string {
  if (key === "") return "{} (every method)";
  const [service, method] = key.split("/");
  return JSON.stringify(method === undefined ? { service } : { service, method });
}

function same(a: unknown, b: unknown): boolean {
  if (isBalancer(a) || isBalancer(b)) return a === b;
  return JSON.stringify(a) === JSON.stringify(b);
}

function describe(value: unknown): string {
  if (isBalancer(value)) return `(balancer "${value.name}")`;
  return `(${JSON.stringify(value)})`;
}

function isBalancer(value: unknown): value is Balancer {
  return typeof value === "object" && value !== null && typeof (value as Balancer).pick === "function";
}
