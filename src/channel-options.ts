import type { BalancerName } from "@meshlite/balancers";
import {
  assertKnownKeys,
  type BackoffOptions,
  type Balancer,
  type CallObserver,
  type Logger,
  type OverloadPenaltyOptions,
  type PeakEwmaOptions,
  type Resolver,
  type ResolverOptions,
} from "@meshlite/core";
import {
  type CallLimitsOptions,
  type LocalityOptions,
  type OutlierDetectionOptions,
  resolveLocality,
  resolveSubset,
  type SlowStartOptions,
  type SubsetOptions,
  validateKeepalive,
} from "@meshlite/pool";
import {
  type ConnectTransportOptions,
  connectTransportOptionNames,
  type GrpcImplementation,
  type KeepaliveOptions,
  type Protocol,
  type TlsOptions,
} from "@meshlite/transport";
import type { ChannelEventHandler } from "./channel-event.js";
import type { HealthCheckOptions } from "./health-check.js";
import type { OutOfBandLoadReportOptions } from "./load-report-stream.js";
import type { MethodOptions } from "./method-options.js";
import type { RetryOptions } from "./retry-policy.js";
import type { ServiceConfig } from "./service-config.js";

/** Options of createChannel. */
export interface ChannelOptions extends ConnectTransportOptions {
  /**
   * Where the service is: `dns:///host:port`, `host:port`, `static:///a:p,b:p`,
   * `ipv4:a:p,...`, `ipv6:[a]:p,...` or `k8s:///service.namespace:port`.
   */
  target: string;
  /** Wire protocol: "grpc", "connect" or "grpc-web". Default "grpc". */
  protocol?: Protocol;
  /**
   * The gRPC client under the channel: meshlite's lean transport on
   * meshlite's own HTTP/2 (about a fifth of connect-node's CPU per call), or
   * connect-node's gRPC transport on node:http2. Default "lean".
   */
  grpcImplementation?: GrpcImplementation;
  /** Balancing policy, by name or as a Balancer object. Default "p2c". */
  balancer?: BalancerName | Balancer;
  /**
   * TLS for every connection; `true` for TLS with Node's default roots.
   * Default: cleartext HTTP/2 (h2c).
   */
  tls?: TlsOptions | boolean;
  /**
   * Host name (and port) that calls are addressed to (`:authority`, and the
   * default TLS server name). Default: the target's host name.
   */
  authority?: string;
  /** Timeout for calls that set none, in ms. Default: none. */
  defaultTimeoutMs?: number;
  /**
   * How long a call without a deadline waits for a ready endpoint before it
   * fails with UNAVAILABLE. Default 20000 ms.
   */
  waitForReadyMs?: number;
  /** Give up on a connection attempt after this long. Default 20000 ms. */
  connectTimeoutMs?: number;
  /** Delay between connection attempts. Default: gRPC's (1 s, x1.6, jitter 0.2, 120 s max). */
  backoff?: BackoffOptions;
  /** Keepalive pings to detect dead connections. Default: none. */
  keepalive?: KeepaliveOptions;
  /** How long close() waits for in-flight calls before it resets them. Default 10000 ms. */
  closeGraceMs?: number;
  /**
   * The most HTTP/2 connections to one endpoint: another is dialled when the
   * calls on the open ones reach the endpoint's SETTINGS_MAX_CONCURRENT_STREAMS
   * (often 100–128 behind nginx or a cloud load balancer), instead of queueing
   * calls behind the limit; extra ones close after 30 s without calls. Default 4.
   */
  maxConnectionsPerEndpoint?: number;
  /**
   * Connections kept open to each endpoint, calls spread over them: for a
   * target that is a single address balancing per connection (a ClusterIP
   * Service, an L4 load balancer). A headless Service balances per call and
   * needs none of this. Default 1.
   */
  minConnectionsPerEndpoint?: number;
  /** An extra connection (above minConnectionsPerEndpoint) closes after this long without calls. Default 30000 ms. */
  extraConnectionIdleMs?: number;
  /** Latency measurement for p2c: peak-EWMA decay and the estimate of endpoints not measured yet. Default 1000 ms and 1 ms. */
  loadOptions?: PeakEwmaOptions;
  /**
   * Options for the target's resolver: DnsResolverOptions for `dns:`
   * targets, KubernetesResolverOptions (from @meshlite/resolver-k8s) for
   * `k8s:`; `static:` takes none. Default: none.
   */
  resolverOptions?: ResolverOptions;
  /** A resolver to use instead of the one registered for the target's scheme. */
  resolver?: Resolver;
  /** Where warnings go (endpoints failing, resolver errors). Default: console, warnings and errors only. */
  logger?: Logger;
  /**
   * Retries: policies per method, the retry budget and hedging. Default:
   * idempotent methods retry UNAVAILABLE up to 3 attempts within a token
   * bucket of 10; other methods only resend calls that never reached a server.
   */
  retry?: RetryOptions;
  /**
   * Passive outlier detection; `false` turns it off. Default: eject after 5
   * failures in a row or as a failure-rate outlier, 30 s x ejections (max
   * 300 s), at most 50% of the endpoints, panic mode below 50% left.
   */
  outlierDetection?: OutlierDetectionOptions | false;
  /** Active health checking with grpc.health.v1.Health/Watch. Default: off. */
  healthCheck?: HealthCheckOptions;
  /**
   * Out-of-band ORCA load reports: a `xds.service.orca.v3.OpenRcaService/StreamCoreMetrics`
   * stream to every ready endpoint, each report its `load.serverLoad` (as the
   * per-call reports in response trailers, which are always read). For
   * servers that report without per-call trailers (grpc-js's ServerMetricRecorder). Default: off.
   */
  outOfBandLoadReports?: OutOfBandLoadReportOptions;
  /**
   * Zone- and node-aware routing that spills over under load (see
   * LocalityOptions); `false` turns it off. Default: on, following the
   * endpoints' topology hints (a k8s Service's `trafficDistribution`), the
   * client's zone from MESHLITE_ZONE or its node's label; no preference
   * without hints or `prefer`.
   */
  locality?: LocalityOptions | false;
  /**
   * Slow start: an endpoint that joins the set, or comes back from ejection,
   * NOT_SERVING or a failed connection, takes a share of calls that ramps up
   * over `windowMs` (its weight x max(minWeightPercent, (t / windowMs)^(1 / aggression)));
   * the endpoints of the first set do not ramp. `false` turns it off.
   * Default: on, `{ windowMs: 30000, aggression: 1, minWeightPercent: 10 }`.
   */
  slowStart?: SlowStartOptions | false;
  /**
   * Subsetting for large fleets: the channel connects to, and picks among,
   * `size` endpoints only (default 12), chosen by deterministic aperture
   * when it knows its rank among its own peers (`peers`, e.g.
   * `k8s:///checkout.shop:http` with `POD_IP` from the downward API, or
   * `rank`/`count`), else by a seeded rendezvous hash; off below
   * `minEndpoints` (default 50) endpoints. `true` for the defaults.
   * Default: off.
   */
  subset?: SubsetOptions | boolean;
  /**
   * Overload signals: an endpoint that answers RESOURCE_EXHAUSTED, HTTP 429 or
   * 503 (Connect, gRPC-web), or sends `grpc-retry-pushback-ms`, gets a
   * latency penalty for balancing (each answer adds `factor` x its latency
   * estimate, decaying with `decayMs`, halved by each success); no ejection. `false` turns it off.
   * Default: on, `{ factor: 10, decayMs: 5000 }`.
   */
  overloadPenalty?: OverloadPenaltyOptions | false;
  /**
   * Concurrency limits: `maxInFlightPerEndpoint` (default: none),
   * `maxPending` calls waiting for an endpoint (default 10000), and
   * `whenFull` ("fail", the default: RESOURCE_EXHAUSTED at once, naming the
   * limit; or "wait" for room).
   */
  limits?: CallLimitsOptions;
  /** Receives endpoint, ejection, health, retry and resolver events. Default: none. */
  onEvent?: ChannelEventHandler;
  /**
   * Watches every call and each of its attempts (endpoint, status, message
   * sizes, request headers to add): for metrics and tracing, such as
   * `createOpenTelemetry().observer` from `@meshlite/opentelemetry`.
   * Default: none (calls build nothing for it).
   */
  observer?: CallObserver;
  /**
   * Per-method options (gRPC's method config): deadline, wait-for-ready and
   * hedging, keyed by `package.Service/Method`, `package.Service` or ""
   * (every method); the most specific key decides. Default: none.
   */
  methods?: Record<string, MethodOptions>;
  /**
   * A gRPC service config (object or JSON text), as grpc-js takes in
   * `grpc.service_config`: its load-balancing policy, method configs and
   * retry throttling become meshlite options (see docs/migrating-from-grpc-js.md).
   * Options given explicitly win; a conflict is logged as a warning naming
   * both. An invalid config throws here, naming its JSON path. Default: none.
   */
  serviceConfig?: ServiceConfig | string;
  /**
   * Look up the service config in DNS too (gRFC A2: the `grpc_config=` TXT
   * record of `_grpc_config.<host>`), for `dns:` targets: one that arrives
   * replaces the running one (`serviceConfig` is the default while DNS has
   * none); an invalid one is logged, counted in `snapshot().serviceConfig`
   * and a `service-config` event, and the last good one keeps running. Default false.
   */
  dnsServiceConfig?: boolean;
}

const protocols: readonly Protocol[] = ["grpc", "connect", "grpc-web"];

/** Every key of ChannelOptions: any other is a mistake (a typo, or an option of a newer version). */
const channelOptionKeys: readonly string[] = [
  "target",
  "protocol",
  "grpcImplementation",
  "balancer",
  "tls",
  "authority",
  "defaultTimeoutMs",
  "waitForReadyMs",
  "connectTimeoutMs",
  "backoff",
  "keepalive",
  "closeGraceMs",
  "maxConnectionsPerEndpoint",
  "minConnectionsPerEndpoint",
  "extraConnectionIdleMs",
  "loadOptions",
  "resolverOptions",
  "resolver",
  "logger",
  "retry",
  "outlierDetection",
  "healthCheck",
  "outOfBandLoadReports",
  "locality",
  "slowStart",
  "subset",
  "overloadPenalty",
  "limits",
  "onEvent",
  "observer",
  "methods",
  "serviceConfig",
  "dnsServiceConfig",
  ...connectTransportOptionNames,
];

/**
 * Checks option names, types and ranges; throws a TypeError that names the
 * option and what it accepts (an unknown key: the nearest known one).
 */
export function validateChannelOptions(options: ChannelOptions): void {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("createChannel: expected an options object with at least a target");
  }
  assertKnownKeys(options, channelOptionKeys, "createChannel");
  if (options.grpcImplementation !== undefined && !["lean", "connect-node"].includes(options.grpcImplementation)) {
    throw new TypeError(
      `createChannel: unknown grpcImplementation ${JSON.stringify(options.grpcImplementation)}: expected "lean" or "connect-node"`,
    );
  }
  if (options.protocol !== undefined && !protocols.includes(options.protocol)) {
    throw new TypeError(
      `createChannel: unknown protocol ${JSON.stringify(options.protocol)}: expected one of ${protocols.map((p) => `"${p}"`).join(", ")}`,
    );
  }
  for (const name of [
    "defaultTimeoutMs",
    "waitForReadyMs",
    "connectTimeoutMs",
    "closeGraceMs",
    "readMaxBytes",
    "writeMaxBytes",
    "compressMinBytes",
  ] as const) {
    const value = options[name];
    if (value !== undefined && (typeof value !== "number" || !Number.isFinite(value) || value < 0)) {
      throw new TypeError(`createChannel: ${name} must be a non-negative number, got ${JSON.stringify(value)}`);
    }
  }
  if (options.tls !== undefined && typeof options.tls !== "boolean" && typeof options.tls !== "object") {
    throw new TypeError("createChannel: tls must be true, false or an object { ca, cert, key, serverName }");
  }
  if (
    options.tls &&
    typeof options.tls === "object" &&
    (options.tls.cert === undefined) !== (options.tls.key === undefined)
  ) {
    throw new TypeError("createChannel: tls.cert and tls.key go together (both for mTLS, or neither)");
  }
  if (options.observer !== undefined && typeof options.observer?.callStarted !== "function") {
    throw new TypeError("createChannel: observer must be an object with a callStarted(call) method (a CallObserver)");
  }
  if (options.keepalive !== undefined) validateKeepalive(options.keepalive, "createChannel: keepalive");
  if (options.dnsServiceConfig !== undefined && typeof options.dnsServiceConfig !== "boolean") {
    throw new TypeError(
      `createChannel: dnsServiceConfig must be true or false, got ${JSON.stringify(options.dnsServiceConfig)}`,
    );
  }
  if (
    options.serviceConfig !== undefined &&
    (typeof options.serviceConfig !== "object" || options.serviceConfig === null)
  ) {
    if (typeof options.serviceConfig !== "string") {
      throw new TypeError("createChannel: serviceConfig must be a gRPC service config: an object or its JSON text");
    }
  }
  resolveLocality(options.locality, "createChannel: locality");
  resolveSubset(options.subset, "createChannel: subset");
  for (const [name, keys] of nestedOptionKeys) {
    const value = options[name];
    if (typeof value === "object" && value !== null) assertKnownKeys(value, keys, `createChannel: ${name}`);
  }
  const retry = options.retry;
  if (typeof retry === "object" && retry !== null) {
    for (const [name, keys] of retryOptionKeys) {
      const value = retry[name];
      if (typeof value === "object" && value !== null) assertKnownKeys(value, keys, `createChannel: retry.${name}`);
    }
    for (const [method, policy] of Object.entries(retry.methods ?? {})) {
      if (typeof policy === "object" && policy !== null) {
        assertKnownKeys(policy, retryPolicyKeys, `createChannel: retry.methods[${JSON.stringify(method)}]`);
      }
    }
  }
}

const retryPolicyKeys = [
  "maxAttempts",
  "initialBackoffMs",
  "maxBackoffMs",
  "backoffMultiplier",
  "jitter",
  "retryableCodes",
];

/** The keys of the option objects inside ChannelOptions (outlierDetection checks its own). */
const nestedOptionKeys: ReadonlyArray<readonly [keyof ChannelOptions, readonly string[]]> = [
  ["tls", ["ca", "cert", "key", "serverName", "rejectUnauthorized"]],
  ["backoff", ["initialMs", "multiplier", "jitter", "maxMs"]],
  ["loadOptions", ["decayMs", "defaultMs"]],
  ["healthCheck", ["service", "backoff"]],
  ["outOfBandLoadReports", ["intervalMs"]],
  ["retry", ["idempotent", "methods", "budget", "hedging"]],
];
const retryOptionKeys: ReadonlyArray<readonly ["idempotent" | "budget" | "hedging", readonly string[]]> = [
  ["idempotent", retryPolicyKeys],
  ["budget", ["maxTokens", "tokenRatio"]],
  ["hedging", ["delayMs", "maxAttempts", "nonFatalCodes"]],
];

/** The Connect transport options of a channel's options, for each endpoint transport. */
export function connectTransportOptions(options: ChannelOptions): ConnectTransportOptions {
  const picked: ConnectTransportOptions = {};
  for (const key of connectTransportOptionNames) {
    if (options[key] !== undefined) (picked as Record<string, unknown>)[key] = options[key];
  }
  return picked;
}
