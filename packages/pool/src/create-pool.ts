import type * as http2 from "node:http2";
import { type BalancerName, createBalancer } from "@meshlite/balancers";
import {
  type BackoffOptions,
  type Balancer,
  consoleLogger,
  getResolverFactory,
  hasResolver,
  type Logger,
  type OverloadPenaltyOptions,
  type PeakEwmaOptions,
  parseTarget,
  type Resolver,
  type ResolverOptions,
  registerResolver,
  type Target,
} from "@meshlite/core";
import { createDnsResolver, createStaticResolver } from "@meshlite/resolvers";
import {
  createHttp2Connection,
  type EndpointConnection,
  type Http2Connection,
  type Http2ConnectionOptions,
  type KeepaliveOptions,
  type TlsOptions,
} from "@meshlite/transport/connection";
import { type CallLimitsOptions, resolveCallLimits } from "./call-limits.js";
import { createEndpointPool, type EndpointPool } from "./endpoint-pool.js";
import { withEndpointZones } from "./endpoint-zones.js";
import type { HealthWatcher } from "./health-policy.js";
import { type LocalityOptions, resolveLocality } from "./locality-options.js";
import { type OutlierDetectionOptions, resolveOutlierDetection } from "./outlier-detection.js";
import { resolveOverloadPenalty } from "./overload-signal.js";
import type { PoolEventHandler } from "./pool-event.js";
import { resolveSlowStart, type SlowStartOptions } from "./slow-start.js";
import { resolveSubset, type SubsetOptions } from "./subset-options.js";

/** Options of createPool: a target and how to connect to its endpoints. */
export interface PoolOptions<C extends EndpointConnection = Http2Connection> {
  /**
   * Where the service is: `dns:///host:port`, `host:port`, `static:///a:p,b:p`,
   * `ipv4:a:p,...`, `ipv6:[a]:p,...` or `k8s:///service.namespace:port`, or
   * a target parsed already.
   */
  target: string | Target;
  /** Balancing policy, by name or as a Balancer object. Default "p2c". */
  balancer?: BalancerName | Balancer;
  /** A resolver to use instead of the one registered for the target's scheme. Default: the registered one. */
  resolver?: Resolver;
  /** Options for the target's resolver (see the resolver's documentation). Default: none. */
  resolverOptions?: ResolverOptions;
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
  /** Give up on a connection attempt after this long. Default 20000 ms. */
  connectTimeoutMs?: number;
  /** Delay between connection attempts. Default: gRPC's (1 s, x1.6, jitter 0.2, 120 s max). */
  backoff?: BackoffOptions;
  /** Keepalive pings to detect dead connections. Default: none. */
  keepalive?: KeepaliveOptions;
  /** Passed to http2.connect for every connection (settings, maxSessionMemory...). Default: Node's. */
  sessionOptions?: http2.ClientSessionOptions;
  /**
   * The most HTTP/2 connections to one endpoint: another is dialled when the
   * calls on the open ones reach the endpoint's SETTINGS_MAX_CONCURRENT_STREAMS
   * (extra ones close after 30 s without calls). Default 4.
   */
  maxConnectionsPerEndpoint?: number;
  /**
   * Connections kept open to each endpoint, with calls spread over them: for
   * a target that is one address balancing per connection (a ClusterIP
   * Service, an L4 load balancer). Default 1.
   */
  minConnectionsPerEndpoint?: number;
  /** An extra connection (above minConnectionsPerEndpoint) closes after this long without calls. Default 30000 ms. */
  extraConnectionIdleMs?: number;
  /** Latency measurement: peak-EWMA decay and the estimate of new endpoints. Default: decay 1000 ms; a new endpoint starts from the measured ones' mean (1 ms when none is measured). */
  loadOptions?: PeakEwmaOptions;
  /**
   * Passive outlier detection; `false` turns it off. Default: eject after 5
   * failures in a row or as a failure-rate outlier, 30 s x ejections (max
   * 300 s), at most 50% of the endpoints, panic mode below 50% left.
   */
  outlierDetection?: OutlierDetectionOptions | false;
  /**
   * Zone- and node-aware routing with spill-over under load; `false` turns it
   * off. Default: on, following the endpoints' topology hints (k8s targets
   * whose Service sets `trafficDistribution`), with the client's zone from
   * MESHLITE_ZONE / NODE_NAME; no preference without hints or `prefer`.
   */
  locality?: LocalityOptions | false;
  /**
   * Subsetting for large fleets: connect to, and pick among, `size`
   * endpoints only (a deterministic aperture when the client's rank is
   * known from `peers` or `rank`/`count`, else a seeded rendezvous-hash
   * subset); `true` for the defaults. Default: off. When on, it is off
   * below `minEndpoints` (50) resolved endpoints.
   */
  subset?: SubsetOptions | boolean;
  /** Active health checking: watches each ready endpoint's health. Default: off. */
  healthWatcher?: HealthWatcher;
  /**
   * Slow start: the weight of an endpoint that joins (or comes back from
   * ejection, NOT_SERVING or a failed connection) ramps up over a window;
   * `false` turns it off. Default: on, `{ windowMs: 30000, aggression: 1, minWeightPercent: 10 }`
   * (not for the endpoints of the first set).
   */
  slowStart?: SlowStartOptions | false;
  /**
   * A latency penalty for endpoints that shed load (RESOURCE_EXHAUSTED, HTTP
   * 429/503, `grpc-retry-pushback-ms`), decaying, not an ejection; `false`
   * turns it off. Default: on, `{ factor: 10, decayMs: 5000 }`.
   */
  overloadPenalty?: OverloadPenaltyOptions | false;
  /**
   * Concurrency limits: calls in flight per endpoint, calls waiting for an
   * endpoint, and what a call does past them. Default: no per-endpoint
   * limit, `maxPending` 10000, `whenFull` "fail".
   */
  limits?: CallLimitsOptions;
  /** How long a call without a deadline waits for a ready endpoint. Default 20000 ms. */
  waitForReadyMs?: number;
  /** Where warnings go (endpoints failing, resolver errors). Default: console, warnings and errors only. */
  logger?: Logger;
  /** Receives endpoint, ejection, health and resolver events. Default: none. */
  onEvent?: PoolEventHandler;
  /** Receives the service configs the resolver finds (the DNS resolver's with `serviceConfig: true`). Default: none. */
  onServiceConfig?: (text: string | undefined) => void;
  /**
   * Makes the connection of each endpoint from the options the pool worked
   * out for it (address, origin, TLS, timeouts, keepalive, connection
   * counts): for an HTTP/2 client other than node:http2. Default:
   * createHttp2Connection.
   */
  connection?: (options: Http2ConnectionOptions) => C;
  /** The API the user called, to start validation messages with. Default "createPool". */
  api?: string;
}

/**
 * The balancing core for a target: parses it, creates its resolver and
 * balancer, and dials one HTTP/2 connection per endpoint to the endpoint's
 * address while `:authority` (and TLS SNI) stay the service's name. The
 * channel and the proxy both start here.
 */
export function createPool<C extends EndpointConnection = Http2Connection>(options: PoolOptions<C>): EndpointPool<C> {
  const api = options.api ?? "createPool";
  const connect = options.connection ?? (createHttp2Connection as unknown as (o: Http2ConnectionOptions) => C);
  const target = typeof options.target === "string" ? parseTarget(options.target) : options.target;
  const balancer = createBalancer(options.balancer, api);
  const logger = options.logger ?? consoleLogger;
  const tls: TlsOptions | undefined = options.tls === true ? {} : options.tls || undefined;
  const origin = originOf(tls, options.authority ?? target.authority, api);
  const outlierDetection = resolveOutlierDetection(options.outlierDetection, `${api}: outlierDetection`);
  const { min: minConnections, max: maxConnections } = connectionsPerEndpoint(options, api);
  const locality = resolveLocality(options.locality, `${api}: locality`);
  const slowStart = resolveSlowStart(options.slowStart, `${api}: slowStart`);
  const overloadPenalty = resolveOverloadPenalty(options.overloadPenalty, `${api}: overloadPenalty`);
  const limits = resolveCallLimits(options.limits, `${api}: limits`);
  const subset = resolveSubset(options.subset, `${api}: subset`);
  registerBuiltInResolvers();
  const peersTarget = subset && subset.peers !== undefined ? parseTarget(subset.peers) : undefined;
  if (peersTarget && !hasResolver(peersTarget.scheme)) {
    throw new TypeError(
      `${api}: subset.peers ${JSON.stringify(peersTarget.raw)} needs a resolver for "${peersTarget.scheme}:" (for k8s targets, import the package @meshlite/resolver-k8s)`,
    );
  }
  // Created last: everything above validates options, and a resolver starts working at once.
  const resolved =
    options.resolver ??
    getResolverFactory(target)(target, {
      logger,
      options: (options.resolverOptions ?? {}) as Readonly<Record<string, unknown>>,
    });
  const resolver = locality ? withEndpointZones(resolved, locality.endpointZones) : resolved;
  const subsetPeers =
    subset && peersTarget
      ? getResolverFactory(peersTarget)(peersTarget, {
          logger,
          options:
            subset.peersResolverOptions ??
            ((peersTarget.scheme === target.scheme ? (options.resolverOptions ?? {}) : {}) as Readonly<
              Record<string, unknown>
            >),
        })
      : undefined;
  return createEndpointPool({
    target,
    resolver,
    balancer,
    logger,
    outlierDetection,
    locality,
    slowStart,
    overloadPenalty,
    limits,
    subset,
    ...(subsetPeers ? { subsetPeers } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(options.onServiceConfig ? { onServiceConfig: options.onServiceConfig } : {}),
    ...(options.healthWatcher ? { healthWatcher: options.healthWatcher } : {}),
    ...(options.loadOptions ? { loadOptions: options.loadOptions } : {}),
    ...(options.waitForReadyMs !== undefined ? { waitForReadyMs: options.waitForReadyMs } : {}),
    createConnection: (endpoint) =>
      connect({
        origin,
        address: endpoint,
        ...(tls ? { tls } : {}),
        ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
        ...(options.backoff ? { backoff: options.backoff } : {}),
        ...(options.keepalive ? { keepalive: options.keepalive } : {}),
        ...(options.sessionOptions ? { sessionOptions: options.sessionOptions } : {}),
        minConnections,
        maxConnections,
        ...(options.extraConnectionIdleMs !== undefined ? { extraIdleMs: options.extraConnectionIdleMs } : {}),
      }),
  });
}

/** `static:` and `dns:` work out of the box; a resolver registered for them before stays in force. */
function registerBuiltInResolvers() {
  if (!hasResolver("static")) registerResolver("static", createStaticResolver);
  if (!hasResolver("dns")) registerResolver("dns", createDnsResolver);
}

function originOf(tls: TlsOptions | undefined, authority: string, api: string): string {
  const origin = `${tls ? "https" : "http"}://${authority}`;
  try {
    new URL(origin);
  } catch {
    throw new TypeError(`${api}: authority ${JSON.stringify(authority)} is not a valid host[:port]`);
  }
  return origin;
}

function connectionsPerEndpoint(options: PoolOptions<EndpointConnection>, api: string): { min: number; max: number } {
  const min = options.minConnectionsPerEndpoint ?? 1;
  const max = options.maxConnectionsPerEndpoint ?? Math.max(4, min);
  for (const [name, value] of [
    ["minConnectionsPerEndpoint", min],
    ["maxConnectionsPerEndpoint", max],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > 64) {
      throw new TypeError(`${api}: ${name} must be a whole number from 1 to 64, got ${String(value)}`);
    }
  }
  if (min > max) {
    throw new TypeError(
      `${api}: minConnectionsPerEndpoint (${min}) must not exceed maxConnectionsPerEndpoint (${max})`,
    );
  }
  const idle = options.extraConnectionIdleMs;
  if (idle !== undefined && !(Number.isFinite(idle) && idle >= 0)) {
    throw new TypeError(`${api}: extraConnectionIdleMs must be a number of ms >= 0, got ${String(idle)}`);
  }
  return { min, max };
}
