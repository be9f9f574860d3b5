import {
  type BalancerName,
  createLeastRequestBalancer,
  createPickFirstBalancer,
  createRingHashBalancer,
  createWeightedRoundRobinBalancer,
} from "@meshlite/balancers";
import type { Balancer } from "@meshlite/core";
import type { HealthCheckOptions } from "./health-check.js";
import type { OutOfBandLoadReportOptions } from "./load-report-stream.js";
import type { MethodOptions } from "./method-options.js";
import type { HedgingPolicy, RetryBudget, RetryPolicy } from "./retry-policy.js";
import { type ConfigReader, createConfigReader, show } from "./service-config-values.js";

/**
 * A gRPC service config (the JSON of grpc/service_config.proto), as grpc-js
 * and grpc-go take it in `grpc.service_config` or from DNS TXT records.
 * Only what meshlite reads is typed; other fields are ignored, as gRPC does.
 */
export interface ServiceConfig {
  /** Policies in order of preference; the first one meshlite has is used, unknown ones are skipped. */
  loadBalancingConfig?: ReadonlyArray<Readonly<Record<string, unknown>>>;
  /** Legacy: "round_robin" or "pick_first"; read only without loadBalancingConfig. */
  loadBalancingPolicy?: string;
  methodConfig?: ReadonlyArray<Readonly<Record<string, unknown>>>;
  retryThrottling?: { maxTokens: number; tokenRatio: number };
  healthCheckConfig?: { serviceName?: string };
  [field: string]: unknown;
}

/**
 * A service config translated into meshlite's own option shapes (the one
 * source of truth: the channel reads only these). Method keys are
 * `package.Service/Method`, `package.Service`, or "" for every method.
 */
export interface ServiceConfigOptions {
  balancer?: BalancerName | Balancer;
  /** Which policy of the config gave `balancer`, for messages (`loadBalancingConfig[1].round_robin`). */
  balancerSource?: string;
  /** The policy and its config as JSON: equal keys, equal balancers (a new config need not replace it). */
  balancerKey?: string;
  retry?: { methods?: Record<string, RetryPolicy | false>; budget?: RetryBudget };
  methods?: Record<string, MethodOptions>;
  readMaxBytes?: number;
  writeMaxBytes?: number;
  outOfBandLoadReports?: OutOfBandLoadReportOptions;
  healthCheck?: HealthCheckOptions;
  /** What the translation could only approximate, for the log. */
  notes: string[];
}

/** The load-balancing policies meshlite has, by their gRPC names. */
export const supportedPolicies = [
  "pick_first",
  "round_robin",
  "least_request_experimental",
  "weighted_round_robin",
  "ring_hash_experimental",
] as const;

/**
 * Validates a service config (an object, or its JSON text) and translates it.
 * Throws a ServiceConfigError naming the JSON path: `${prefix}${root}.methodConfig[1].retryPolicy.maxAttempts: must be an integer >= 2, got 1`.
 */
export function translateServiceConfig(
  input: unknown,
  prefix = "createChannel: ",
  root = "serviceConfig",
): ServiceConfigOptions {
  const read = createConfigReader(prefix);
  let value = input;
  if (typeof input === "string") {
    try {
      value = JSON.parse(input);
    } catch (error) {
      read.fail(root, `is not valid JSON (${(error as Error).message})`);
    }
  }
  const config = read.object(value, root);
  const out: ServiceConfigOptions = { notes: [] };
  if (config.loadBalancingConfig !== undefined) {
    Object.assign(out, balancerOf(read, config.loadBalancingConfig, `${root}.loadBalancingConfig`));
  } else if (config.loadBalancingPolicy !== undefined) {
    const path = `${root}.loadBalancingPolicy`;
    const name = read.string(config.loadBalancingPolicy, path).toLowerCase();
    if (name !== "round_robin" && name !== "pick_first") {
      read.fail(path, `must be "round_robin" or "pick_first", got ${show(config.loadBalancingPolicy)}`);
    }
    out.balancer = name === "round_robin" ? "round-robin" : "pick-first";
    out.balancerSource = `loadBalancingPolicy ${name}`;
    out.balancerKey = out.balancer;
  }
  if (config.methodConfig !== undefined) methodsOf(read, config.methodConfig, `${root}.methodConfig`, out);
  if (config.retryThrottling !== undefined) {
    const path = `${root}.retryThrottling`;
    const t = read.object(config.retryThrottling, path);
    const maxTokens = read.number(t.maxTokens, `${path}.maxTokens`, 1, 1000, true);
    const tokenRatio = read.number(t.tokenRatio, `${path}.tokenRatio`, 0.001);
    out.retry = { ...out.retry, budget: { maxTokens, tokenRatio } };
  }
  if (config.healthCheckConfig !== undefined) {
    const path = `${root}.healthCheckConfig`;
    const h = read.object(config.healthCheckConfig, path);
    out.healthCheck = { service: h.serviceName === undefined ? "" : read.string(h.serviceName, `${path}.serviceName`) };
  }
  return out;
}

type BalancerPart = Pick<ServiceConfigOptions, "balancer" | "balancerSource" | "balancerKey" | "outOfBandLoadReports">;

function balancerOf(read: ConfigReader, value: unknown, path: string): BalancerPart {
  const list = read.array(value, path);
  const skipped: string[] = [];
  for (const [i, item] of list.entries()) {
    const at = `${path}[${i}]`;
    const entry = read.object(item, at);
    const names = Object.keys(entry);
    if (names.length !== 1) {
      read.fail(at, `must have exactly one policy name as its key, got ${show(names)}`);
    }
    const name = names[0] as string;
    if (!(supportedPolicies as readonly string[]).includes(name)) {
      skipped.push(name);
      continue;
    }
    const policyPath = `${at}.${name}`;
    const cfg = read.object(entry[name] ?? {}, policyPath);
    return {
      ...policyOf(read, name as (typeof supportedPolicies)[number], cfg, policyPath),
      balancerSource: policyPath.slice(policyPath.indexOf("loadBalancingConfig")),
      balancerKey: `${name}:${JSON.stringify(cfg)}`,
    };
  }
  return read.fail(
    path,
    `none of the policies is supported (${skipped.length > 0 ? skipped.join(", ") : "the list is empty"}); meshlite supports ${supportedPolicies.join(", ")}`,
  );
}

function policyOf(
  read: ConfigReader,
  name: (typeof supportedPolicies)[number],
  cfg: Record<string, unknown>,
  path: string,
): BalancerPart {
  switch (name) {
    case "pick_first": {
      const shuffle =
        cfg.shuffleAddressList !== undefined && read.boolean(cfg.shuffleAddressList, `${path}.shuffleAddressList`);
      return { balancer: shuffle ? createPickFirstBalancer({ shuffleAddressList: true }) : "pick-first" };
    }
    case "round_robin":
      return { balancer: "round-robin" };
    case "least_request_experimental": {
      // gRFC A48: at least 2; above 10 is taken as 10.
      const n =
        cfg.choiceCount === undefined ? 2 : read.number(cfg.choiceCount, `${path}.choiceCount`, 2, undefined, true);
      return { balancer: n === 2 ? "least-request" : createLeastRequestBalancer({ choiceCount: Math.min(n, 10) }) };
    }
    case "weighted_round_robin": {
      const ms = (field: string, positive: boolean) =>
        cfg[field] === undefined ? undefined : read.durationMs(cfg[field], `${path}.${field}`, positive);
      const options = {
        blackoutPeriodMs: ms("blackoutPeriod", false),
        weightExpirationPeriodMs: ms("weightExpirationPeriod", true),
        // A58: below 100 ms is taken as 100 ms.
        weightUpdatePeriodMs: mapDefined(ms("weightUpdatePeriod", true), (v) => Math.max(v, 100)),
        errorUtilizationPenalty:
          cfg.errorUtilizationPenalty === undefined
            ? undefined
            : read.number(cfg.errorUtilizationPenalty, `${path}.errorUtilizationPenalty`, 0),
      };
      const oob =
        cfg.enableOobLoadReport !== undefined && read.boolean(cfg.enableOobLoadReport, `${path}.enableOobLoadReport`);
      const period = ms("oobReportingPeriod", true);
      const set = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
      return {
        balancer: Object.keys(set).length === 0 ? "weighted-round-robin" : createWeightedRoundRobinBalancer(set),
        ...(oob ? { outOfBandLoadReports: period === undefined ? {} : { intervalMs: Math.max(period, 100) } } : {}),
      };
    }
    case "ring_hash_experimental": {
      const size = (field: string) =>
        cfg[field] === undefined ? undefined : read.number(cfg[field], `${path}.${field}`, 1, 8 * 1024 * 1024, true);
      const minRingSize = size("minRingSize");
      const maxRingSize = size("maxRingSize");
      if (minRingSize !== undefined && maxRingSize !== undefined && minRingSize > maxRingSize) {
        read.fail(path, `minRingSize (${minRingSize}) must not exceed maxRingSize (${maxRingSize})`);
      }
      const hashHeader =
        cfg.requestHashHeader === undefined
          ? undefined
          : read.string(cfg.requestHashHeader, `${path}.requestHashHeader`);
      const set = Object.fromEntries(
        Object.entries({ minRingSize, maxRingSize, hashHeader: hashHeader?.toLowerCase() }).filter(
          ([, v]) => v !== undefined,
        ),
      );
      return { balancer: Object.keys(set).length === 0 ? "ring-hash" : createRingHashBalancer(set) };
    }
  }
}

function methodsOf(read: ConfigReader, value: unknown, path: string, out: ServiceConfigOptions) {
  const list = read.array(value, path);
  const seen = new Map<string, string>();
  const retryMethods: Record<string, RetryPolicy | false> = {};
  const methods: Record<string, MethodOptions> = {};
  const sizes = { readMaxBytes: new Map<string, number>(), writeMaxBytes: new Map<string, number>() };
  for (const [i, item] of list.entries()) {
    const at = `${path}[${i}]`;
    const entry = read.object(item, at);
    const names = read.array(entry.name, `${at}.name`);
    if (names.length === 0) read.fail(`${at}.name`, 'must list at least one { "service", "method" }, got []');
    const keys = names.map((name, j) => {
      const key = methodKey(read, name, `${at}.name[${j}]`);
      const first = seen.get(key);
      if (first !== undefined) {
        read.fail(`${at}.name[${j}]`, `duplicate name ${show(name)}, named first at ${first}`);
      }
      seen.set(key, `${at}.name[${j}]`);
      return key;
    });
    if (entry.retryPolicy !== undefined && entry.hedgingPolicy !== undefined) {
      read.fail(at, "has both retryPolicy and hedgingPolicy; a method takes one of them");
    }
    const retry = entry.retryPolicy === undefined ? false : retryPolicyOf(read, entry.retryPolicy, `${at}.retryPolicy`);
    const options: MethodOptions = {};
    if (entry.timeout !== undefined) options.timeoutMs = read.durationMs(entry.timeout, `${at}.timeout`);
    if (entry.waitForReady !== undefined) options.waitForReady = read.boolean(entry.waitForReady, `${at}.waitForReady`);
    if (entry.hedgingPolicy !== undefined)
      options.hedging = hedgingOf(read, entry.hedgingPolicy, `${at}.hedgingPolicy`);
    for (const [field, option] of [
      ["maxRequestMessageBytes", "writeMaxBytes"],
      ["maxResponseMessageBytes", "readMaxBytes"],
    ] as const) {
      if (entry[field] !== undefined) {
        sizes[option].set(keys.join(","), read.number(entry[field], `${at}.${field}`, 0, 2 ** 32 - 1, true));
      }
    }
    // The entry that matches a method is the whole truth for it, as in gRPC: a
    // method named without a retryPolicy is not retried by policy.
    for (const key of keys) {
      retryMethods[key] = retry;
      methods[key] = options;
    }
  }
  if (list.length > 0) {
    out.retry = { ...out.retry, methods: retryMethods };
    out.methods = methods;
  }
  for (const [option, byNames] of Object.entries(sizes)) {
    if (byNames.size === 0) continue;
    const largest = Math.max(...byNames.values());
    out[option as "readMaxBytes" | "writeMaxBytes"] = largest;
    if (new Set(byNames.values()).size > 1 || !byNames.has("")) {
      out.notes.push(
        `message size limits apply to the whole channel in meshlite: ${option} = ${largest}, the largest ${option === "readMaxBytes" ? "maxResponseMessageBytes" : "maxRequestMessageBytes"} of the service config`,
      );
    }
  }
}

/** `package.Service/Method`, `package.Service` or "" (every method), per gRPC's rules for `name`. */
function methodKey(read: ConfigReader, value: unknown, path: string): string {
  const name = read.object(value, path);
  const service = name.service === undefined ? "" : read.string(name.service, `${path}.service`);
  const method = name.method === undefined ? "" : read.string(name.method, `${path}.method`);
  if (service === "" && method !== "") {
    read.fail(
      path,
      `names a method without its service (${show(value)}); give "service" too, or neither for the default`,
    );
  }
  return method === "" ? service : `${service}/${method}`;
}

function retryPolicyOf(read: ConfigReader, value: unknown, path: string): RetryPolicy {
  const p = read.object(value, path);
  // gRFC A6: every field is required; more than 5 attempts are taken as 5.
  const maxAttempts = read.number(p.maxAttempts, `${path}.maxAttempts`, 2, undefined, true);
  return {
    maxAttempts: Math.min(maxAttempts, 5),
    initialBackoffMs: read.durationMs(p.initialBackoff, `${path}.initialBackoff`, true),
    maxBackoffMs: read.durationMs(p.maxBackoff, `${path}.maxBackoff`, true),
    backoffMultiplier: positive(read, p.backoffMultiplier, `${path}.backoffMultiplier`),
    retryableCodes: read.codes(p.retryableStatusCodes, `${path}.retryableStatusCodes`, true),
  };
}

function hedgingOf(read: ConfigReader, value: unknown, path: string): HedgingPolicy {
  const h = read.object(value, path);
  const maxAttempts = read.number(h.maxAttempts, `${path}.maxAttempts`, 2, undefined, true);
  return {
    maxAttempts: Math.min(maxAttempts, 5),
    delayMs: h.hedgingDelay === undefined ? 0 : read.durationMs(h.hedgingDelay, `${path}.hedgingDelay`),
    nonFatalCodes:
      h.nonFatalStatusCodes === undefined
        ? []
        : read.codes(h.nonFatalStatusCodes, `${path}.nonFatalStatusCodes`, false),
  };
}

function positive(read: ConfigReader, value: unknown, path: string): number {
  if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
    read.fail(path, `must be a number above 0, got ${show(value)}`);
  }
  return value as number;
}

function mapDefined<T, U>(value: T | undefined, f: (v: T) => U): U | undefined {
  return value === undefined ? undefined : f(value);
}
