import { type BalancerName, balancerNames } from "@meshlite/balancers";
import type { OverloadPenaltyOptions } from "@meshlite/core";
import { assertKnownKeys, type CallObserver, type Logger, parseTarget, type ResolverOptions } from "@meshlite/core";
import {
  type CallLimitsOptions,
  type LocalityOptions,
  type OutlierDetectionOptions,
  resolveCallLimits,
  resolveLocality,
  resolveOutlierDetection,
  resolveOverloadPenalty,
  resolveSlowStart,
  resolveSubset,
  type SlowStartOptions,
  type SubsetOptions,
  validateKeepalive,
} from "@meshlite/pool";
import type { KeepaliveOptions, TlsOptions } from "@meshlite/transport";

/** One upstream service and the calls that go to it. */
export interface RouteOptions {
  /** Name in metrics and logs. Default: the target. */
  name?: string;
  /**
   * Matches the call's `:authority` (or HTTP/1.1 Host): `host` matches any
   * port, `host:port` only that port. Default: any authority.
   */
  authority?: string;
  /** Matches the gRPC service name, the first path segment (`pkg.Service`). Default: any service. */
  service?: string;
  /** Where the service is, as for createChannel: `dns:///host:port`, `static:///a:p,b:p`, `k8s:///svc.ns:port`... */
  target: string;
  /** Balancing policy. Default "p2c". */
  balancer?: BalancerName;
  /** TLS to the upstream endpoints; `true` for Node's default roots. Default: cleartext HTTP/2. */
  tls?: TlsOptions | boolean;
  /**
   * Keepalive pings on the connections to the endpoints, as for createChannel:
   * an endpoint that stops answering (a dead node, a dropped route) is found
   * within `intervalMs + timeoutMs` and its calls fail (never-sent ones go
   * elsewhere) instead of hanging to their deadline. Default: none (gRPC
   * servers refuse frequent pings unless configured to allow them).
   */
  keepalive?: KeepaliveOptions;
  /** `:authority` sent upstream. Default: the client's, unchanged. */
  upstreamAuthority?: string;
  /** Options for the target's resolver, as for createChannel (DnsResolverOptions for `dns:`...). Default: none. */
  resolverOptions?: ResolverOptions;
  /**
   * Passive outlier detection: endpoints whose calls keep failing (UNAVAILABLE,
   * INTERNAL, UNKNOWN, DATA_LOSS or a broken stream) are ejected for a while.
   * Default: the channel's (5 failures in a row, 30 s); false turns it off.
   */
  outlierDetection?: OutlierDetectionOptions | false;
  /**
   * Zone- and node-aware routing with spill-over, as for createChannel; the
   * proxy's own zone from `zone`, else MESHLITE_ZONE, else (k8s targets) its
   * node's label. Default: on, following the endpoints' topology hints;
   * false turns it off.
   */
  locality?: LocalityOptions | false;
  /**
   * Slow start of upstream endpoints that join (or come back from ejection or
   * a failed connection), as for createChannel; false turns it off.
   * Default: on, `{ windowMs: 30000, aggression: 1, minWeightPercent: 10 }`.
   */
  slowStart?: SlowStartOptions | false;
  /**
   * Subsetting of a large upstream set, as for createChannel: each proxy
   * (worker) connects to `size` upstream endpoints only, by deterministic
   * aperture with `peers` (the proxies' own Service) or `rank`/`count`,
   * else by a seeded rendezvous hash; off below `minEndpoints`. Default: off.
   */
  subset?: SubsetOptions | boolean;
  /**
   * Latency penalty of upstream endpoints that shed load (RESOURCE_EXHAUSTED,
   * HTTP 429/503 without a gRPC status, `grpc-retry-pushback-ms`), as for
   * createChannel; false turns it off. Default: on, `{ factor: 10, decayMs: 5000 }`.
   */
  overloadPenalty?: OverloadPenaltyOptions | false;
  /**
   * Per-upstream concurrency limits, as for createChannel: calls in flight per
   * endpoint, calls waiting for an endpoint, fail or wait when full.
   * Default: no per-endpoint limit, `maxPending` 10000, `whenFull` "fail".
   */
  limits?: CallLimitsOptions;
}

/** TLS on the proxy's listener. */
export interface ListenerTlsOptions {
  /** Server certificate chain (PEM). */
  cert: string | Buffer;
  /** Server private key (PEM). */
  key: string | Buffer;
  /** CAs that client certificates must chain to; setting it turns on client-certificate verification. Default: none. */
  clientCa?: string | Buffer;
}

/** What carries HTTP/2 on both sides, to clients and to endpoints: node:http2 streams, or the proxy's own frame engine. */
export type ProxyEngine = "streams" | "frames";

/** The accepted values of ProxyOptions.engine. */
export const proxyEngines: readonly ProxyEngine[] = ["streams", "frames"];

/** Options of createProxy. */
export interface ProxyOptions {
  /** Where calls go; the first route that matches a call takes it. */
  routes: RouteOptions[];
  /** TLS on the listener (ALPN h2 and http/1.1). Default: cleartext (h2c and HTTP/1.1 on one port). */
  tls?: ListenerTlsOptions;
  /**
   * What carries HTTP/2, from clients and to endpoints: "streams" (node:http2
   * stream objects) or "frames" (the proxy's own frame-level engine,
   * packages/proxy/src/h2: server sessions for clients, client sessions to
   * endpoints). HTTP/1.1 clients use node:http either way. Default "frames", or the environment variable
   * MESHLITE_PROXY_ENGINE when set (for running the tests on either engine).
   */
  engine?: ProxyEngine;
  /** Streams a client may open at once on one connection (HTTP/2 SETTINGS). Default 1000. */
  maxConcurrentStreams?: number;
  /** Calls in flight over all clients; more fail with RESOURCE_EXHAUSTED. Default 10000. */
  maxInFlight?: number;
  /** Largest request header block in bytes; larger get RESOURCE_EXHAUSTED (HTTP/1.1: 431). Default 16384. */
  maxHeaderBytes?: number;
  /** Most request header fields (pseudo-headers included); more get RESOURCE_EXHAUSTED. Default 128. */
  maxHeaderPairs?: number;
  /** Largest message, either way, in bytes; larger fail the call with RESOURCE_EXHAUSTED. Default 33554432 (32 MiB). */
  maxMessageBytes?: number;
  /**
   * Streams an HTTP/2 client may reset before their response starts, once
   * they are also over half of its streams, before its connection is cut off
   * with GOAWAY ENHANCE_YOUR_CALM (HTTP/2 rapid reset). 0 turns the check off. Default 100.
   */
  maxPrematureResets?: number;
  /** PING and SETTINGS frames an HTTP/2 client may send per second per connection; more cut it off. 0: no limit. Default 100. */
  maxControlFramesPerSecond?: number;
  /**
   * After a client connection is cut off for abuse (rapid reset, PING,
   * SETTINGS or CONTINUATION flood), new connections from the same IP address
   * are closed at accept for this long, doubling for each repeat within 64x
   * this time (up to 32x), so an attacker that reconnects at once costs next
   * to nothing. Clients behind one NAT address share the penalty. Each worker
   * keeps its own. 0 turns it off. Default 1000 ms.
   */
  abusePenaltyMs?: number;
  /**
   * Time from accepting a connection to its first call (TLS handshake,
   * HTTP/2 preface, HTTP/1.1 request headers); a connection that takes longer
   * is closed (slowloris). 0: no limit. Default 10000 ms.
   */
  handshakeTimeoutMs?: number;
  /** An HTTP/2 client connection with no call open for this long is closed with GOAWAY. 0: never. Default 300000 ms. */
  clientIdleTimeoutMs?: number;
  /**
   * A call that moves no bytes either way for this long is cancelled (a
   * client that never ends its request, a reader that stopped reading).
   * Long-lived streams that are silent for longer need a higher value or 0
   * (no limit). Default 300000 ms.
   */
  streamIdleTimeoutMs?: number;
  /** How long a call without a deadline waits for a ready endpoint. Default 20000 ms. */
  waitForReadyMs?: number;
  /** How long close() lets in-flight calls finish before it resets them. Default 10000 ms. */
  graceMs?: number;
  /** Log every call (JSON line at info). Default false. */
  accessLog?: boolean;
  /** Where logs go. Default: JSON lines on stderr at info. */
  logger?: Logger;
  /**
   * Watches every routed call and each upstream attempt (endpoint, status,
   * request headers to add), as for createChannel: for metrics and tracing,
   * such as `createOpenTelemetry().observer` from `@meshlite/opentelemetry`.
   * Default: none.
   */
  observer?: CallObserver;
}

export const defaults = {
  maxConcurrentStreams: 1000,
  maxInFlight: 10_000,
  maxHeaderBytes: 16_384,
  maxHeaderPairs: 128,
  maxMessageBytes: 32 * 1024 * 1024,
  maxPrematureResets: 100,
  maxControlFramesPerSecond: 100,
  abusePenaltyMs: 1000,
  handshakeTimeoutMs: 10_000,
  clientIdleTimeoutMs: 300_000,
  streamIdleTimeoutMs: 300_000,
  waitForReadyMs: 20_000,
  graceMs: 10_000,
} as const;

/** The numeric limits of ProxyOptions: each a non-negative integer. */
export const limitKeys = [
  "maxConcurrentStreams",
  "maxInFlight",
  "maxHeaderBytes",
  "maxHeaderPairs",
  "maxMessageBytes",
  "maxPrematureResets",
  "maxControlFramesPerSecond",
  "abusePenaltyMs",
  "handshakeTimeoutMs",
  "clientIdleTimeoutMs",
  "streamIdleTimeoutMs",
  "waitForReadyMs",
  "graceMs",
] as const;

const routeKeys = [
  "name",
  "authority",
  "service",
  "target",
  "balancer",
  "tls",
  "upstreamAuthority",
  "keepalive",
  "resolverOptions",
  "outlierDetection",
  "locality",
  "slowStart",
  "subset",
  "overloadPenalty",
  "limits",
];
const proxyKeys = ["routes", "tls", "engine", ...limitKeys, "accessLog", "logger", "observer"];

/** The engine of `options`: its own, else MESHLITE_PROXY_ENGINE, else "frames"; an unknown value throws. */
export function resolveEngine(options: ProxyOptions): ProxyEngine {
  if (options.engine !== undefined) return options.engine;
  const env = process.env.MESHLITE_PROXY_ENGINE;
  if (env === undefined || env === "") return "frames";
  if (!proxyEngines.includes(env as ProxyEngine)) {
    throw new TypeError(
      `proxy: MESHLITE_PROXY_ENGINE=${JSON.stringify(env)} is not an engine; expected one of ${proxyEngines.join(", ")}`,
    );
  }
  return env as ProxyEngine;
}

/** Checks routes and limits; throws a TypeError that says where the problem is and what is accepted. */
export function validateProxyOptions(options: ProxyOptions): void {
  if (typeof options !== "object" || options === null)
    throw new TypeError("proxy: expected an options object with routes");
  assertKnownKeys(options, proxyKeys, "proxy");
  if (!Array.isArray(options.routes) || options.routes.length === 0) {
    throw new TypeError("proxy: routes must be a non-empty list of { target, authority?, service?, balancer? }");
  }
  if (options.observer !== undefined && typeof options.observer?.callStarted !== "function") {
    throw new TypeError("proxy: observer must be an object with a callStarted(call) method (a CallObserver)");
  }
  options.routes.forEach((route, i) => {
    validateRoute(route, `routes[${i}]`);
  });
  for (const name of limitKeys) {
    const value = options[name];
    if (value !== undefined && (typeof value !== "number" || !Number.isInteger(value) || value < 0)) {
      throw new TypeError(`proxy: ${name} must be a non-negative integer, got ${JSON.stringify(value)}`);
    }
  }
  if (options.engine !== undefined && !proxyEngines.includes(options.engine)) {
    throw new TypeError(
      `proxy: unknown engine ${JSON.stringify(options.engine)}; expected one of ${proxyEngines.map((e) => JSON.stringify(e)).join(", ")}`,
    );
  }
  if (options.tls !== undefined && (options.tls.cert === undefined || options.tls.key === undefined)) {
    throw new TypeError("proxy: tls needs both cert and key (PEM)");
  }
}

function validateRoute(route: RouteOptions, where: string): void {
  if (typeof route !== "object" || route === null || Array.isArray(route)) {
    throw new TypeError(`${where}: expected an object { target, authority?, service?, balancer? }`);
  }
  assertKnownKeys(route, routeKeys, where);
  if (typeof route.target !== "string" || route.target === "") {
    throw new TypeError(
      `${where}.target: required, a target such as "dns:///orders:50051" or "static:///10.0.0.1:50051"`,
    );
  }
  try {
    parseTarget(route.target);
  } catch (e) {
    throw new TypeError(`${where}.target: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (route.balancer !== undefined && !balancerNames.includes(route.balancer)) {
    throw new TypeError(
      `${where}.balancer: unknown balancer ${JSON.stringify(route.balancer)}; expected one of ${balancerNames.join(", ")}`,
    );
  }
  for (const key of ["name", "authority", "service", "upstreamAuthority"] as const) {
    const value = route[key];
    if (value !== undefined && (typeof value !== "string" || value === "")) {
      throw new TypeError(`${where}.${key}: expected a non-empty string, got ${JSON.stringify(value)}`);
    }
  }
  if (route.keepalive !== undefined) validateKeepalive(route.keepalive, `${where}.keepalive`);
  if (route.outlierDetection !== undefined)
    resolveOutlierDetection(route.outlierDetection, `${where}.outlierDetection`);
  if (route.locality !== undefined) resolveLocality(route.locality, `${where}.locality`);
  resolveSlowStart(route.slowStart, `${where}.slowStart`);
  resolveSubset(route.subset, `${where}.subset`);
  resolveOverloadPenalty(route.overloadPenalty, `${where}.overloadPenalty`);
  resolveCallLimits(route.limits, `${where}.limits`);
  if (route.service?.includes("/")) {
    throw new TypeError(
      `${where}.service: a gRPC service name like "pkg.v1.Service", without slashes, got "${route.service}"`,
    );
  }
}
