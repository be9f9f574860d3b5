import * as http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "@meshlite/core";
import { createInFlightCalls } from "@meshlite/pool";
import { http1Downstream, http2Downstream } from "./downstream.js";
import { type ForwardContext, forwardCall } from "./forward-call.js";
import { createFrontServer } from "./front-server.js";
import { createJsonLogger } from "./json-logger.js";
import { parseListenAddress } from "./listen-address.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { defaults, type ProxyOptions, resolveEngine, validateProxyOptions } from "./proxy-options.js";
import { createRouter } from "./router.js";
import { createUpstream, type Upstream } from "./upstream.js";

/** A running proxy. */
export interface Proxy {
  /** Starts the call listener on `host:port` (port 0: any free port); resolves to the bound address. */
  listen(address: string): Promise<AddressInfo>;
  /** Starts the admin listener (`/healthz`, `/metrics`, `/routes`) on `host:port`. */
  listenAdmin(address: string): Promise<AddressInfo>;
  /** Ready: not closing, and every route has a ready endpoint. */
  ready(): { ready: boolean; routes: Array<{ route: string; readyEndpoints: number; lastError?: string }> };
  /** Calls in flight. */
  inFlight(): number;
  /** The routes and the endpoints each has now (what `/routes` answers). */
  routes(): Array<{
    route: string;
    authority: string;
    service: string;
    target: string;
    endpoints: unknown[];
    /** The route's subset (mode, rank, members), with `subset` on. */
    subset?: unknown;
  }>;
  readonly metrics: Metrics;
  /**
   * Drains: stops accepting, sends GOAWAY to HTTP/2 clients, lets in-flight
   * calls finish for up to `graceMs` (default: the proxy's), then closes everything.
   */
  close(graceMs?: number): Promise<void>;
}

export function createProxy(options: ProxyOptions): Proxy {
  validateProxyOptions(options);
  const engine = resolveEngine(options);
  const logger: Logger = options.logger ?? createJsonLogger();
  const waitForReadyMs = options.waitForReadyMs ?? defaults.waitForReadyMs;
  const upstreams: Upstream[] = options.routes.map((route, i) =>
    createUpstream(route, i, waitForReadyMs, logger, engine),
  );
  const metrics = createMetrics({
    liveEndpoints(route) {
      const live = new Set<string>();
      for (const u of upstreams) {
        if (u.name === route) for (const sc of u.pool.subchannels()) live.add(sc.key);
      }
      return live;
    },
  });
  const calls = createInFlightCalls();
  let closing: Promise<void> | undefined;

  const ctx: ForwardContext = {
    router: createRouter(upstreams),
    metrics,
    logger,
    accessLog: options.accessLog ?? false,
    maxHeaderBytes: options.maxHeaderBytes ?? defaults.maxHeaderBytes,
    maxHeaderPairs: options.maxHeaderPairs ?? defaults.maxHeaderPairs,
    clientLimited: (limit) => metrics.observeClientLimit(limit),
    maxMessageBytes: options.maxMessageBytes ?? defaults.maxMessageBytes,
    maxInFlight: options.maxInFlight ?? defaults.maxInFlight,
    callStarted: calls.start,
    callEnded: calls.end,
    observer: options.observer,
  };

  const front = createFrontServer({
    ...(options.tls ? { tls: options.tls } : {}),
    maxConcurrentStreams: options.maxConcurrentStreams ?? defaults.maxConcurrentStreams,
    maxHeaderBytes: ctx.maxHeaderBytes,
    maxHeaderPairs: ctx.maxHeaderPairs,
    guard: {
      maxPrematureResets: options.maxPrematureResets ?? defaults.maxPrematureResets,
      maxControlFramesPerSecond: options.maxControlFramesPerSecond ?? defaults.maxControlFramesPerSecond,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? defaults.handshakeTimeoutMs,
      clientIdleTimeoutMs: options.clientIdleTimeoutMs ?? defaults.clientIdleTimeoutMs,
      streamIdleTimeoutMs: options.streamIdleTimeoutMs ?? defaults.streamIdleTimeoutMs,
    },
    abusePenaltyMs: options.abusePenaltyMs ?? defaults.abusePenaltyMs,
    onLimit(limit) {
      metrics.observeClientLimit(limit);
      logger.debug("client ran into a limit", { limit });
    },
    onStream(stream, headers) {
      stream.on("error", () => {});
      forwardCall(ctx, http2Downstream(stream, headers));
    },
    engine,
    onCall(down) {
      forwardCall(ctx, down);
    },
    onRequest(req, res) {
      res.on("error", () => {});
      forwardCall(ctx, http1Downstream(req, res));
    },
    onError(message, error) {
      logger.debug(message, { error: error.message });
    },
  });

  metrics.addGauge("meshlite_proxy_in_flight", "Calls in flight through the proxy.", () => [[{}, calls.count()]]);
  metrics.addGauge("meshlite_proxy_endpoint_in_flight", "Calls in flight per endpoint.", () =>
    upstreams.flatMap((u) =>
      u.pool
        .subchannels()
        .map((sc) => [{ route: u.name, endpoint: sc.key }, sc.load.inFlight] as [Record<string, string>, number]),
    ),
  );
  metrics.addGauge("meshlite_proxy_endpoint_state", "Connection state per endpoint (1 for the current state).", () =>
    upstreams.flatMap((u) =>
      u.pool
        .subchannels()
        .map(
          (sc) =>
            [{ route: u.name, endpoint: sc.key, state: sc.draining ? "draining" : sc.state() }, 1] as [
              Record<string, string>,
              number,
            ],
        ),
    ),
  );
  metrics.addGauge("meshlite_proxy_endpoint_latency_ms", "Peak-EWMA latency estimate per endpoint.", () =>
    upstreams.flatMap((u) =>
      u.pool
        .subchannels()
        .map((sc) => [{ route: u.name, endpoint: sc.key }, sc.load.latencyMs()] as [Record<string, string>, number]),
    ),
  );

  metrics.addGauge(
    "meshlite_proxy_locality",
    "The locality policy's state per route (1): preferring, spilling or off, and the proxy's zone.",
    () =>
      upstreams.flatMap((u) => {
        const locality = u.pool.snapshot().locality;
        return locality
          ? [
              [{ route: u.name, state: locality.state, zone: locality.zone ?? "" }, 1] as [
                Record<string, string>,
                number,
              ],
            ]
          : [];
      }),
  );

  metrics.addGauge(
    "meshlite_proxy_subset_endpoints",
    "Endpoints in the subset per route, by mode (aperture, rendezvous or off); only routes with subset.",
    () =>
      upstreams.flatMap((u) => {
        const subset = u.pool.snapshot().subset;
        return subset
          ? [[{ route: u.name, mode: subset.mode }, subset.members.length] as [Record<string, string>, number]]
          : [];
      }),
  );

  const adminServers: http.Server[] = [];

  function ready() {
    const routes = upstreams.map((u) => {
      const readyEndpoints = u.pool.subchannels().filter((sc) => !sc.draining && sc.state() === "ready").length;
      const lastError = u.pool.lastError();
      return { route: u.name, readyEndpoints, ...(lastError ? { lastError } : {}) };
    });
    return { ready: closing === undefined && routes.every((r) => r.readyEndpoints > 0), routes };
  }

  function routes() {
    return upstreams.map((u) => ({
      route: u.name,
      authority: u.route.authority ?? "*",
      service: u.route.service ?? "*",
      target: u.route.target,
      ...(() => {
        const snap = u.pool.snapshot();
        return { endpoints: snap.endpoints as unknown[], ...(snap.subset ? { subset: snap.subset } : {}) };
      })(),
    }));
  }

  function adminHandler(req: http.IncomingMessage, res: http.ServerResponse) {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      const r = ready();
      res.writeHead(r.ready ? 200 : 503, { "content-type": "application/json" });
      res.end(`${JSON.stringify(r)}\n`);
    } else if (path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
      res.end(metrics.render());
    } else if (path === "/routes") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(`${JSON.stringify(routes(), null, 2)}\n`);
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found; try /healthz, /metrics or /routes\n");
    }
  }

  async function listenOn(server: { listen(host: string, port: number): Promise<AddressInfo> }, address: string) {
    const { host, port } = parseListenAddress(address);
    return server.listen(host, port);
  }

  async function close(graceMs: number): Promise<void> {
    logger.info("draining", { inFlight: calls.count(), graceMs });
    const deadline = performance.now() + graceMs;
    front.shutdown();
    for (const s of adminServers) s.close();
    await calls.settled(graceMs);
    // Calls have ended upstream; let the last responses and trailers reach
    // the clients and their connections close after GOAWAY.
    await front.closed(Math.max(0, deadline - performance.now()));
    if (calls.count() > 0) {
      logger.warn("grace period over, resetting calls still in flight", { inFlight: calls.count() });
    }
    front.destroy();
    for (const s of adminServers) s.closeAllConnections();
    await Promise.all(upstreams.map((u) => u.destroy()));
    logger.info("closed");
  }

  return {
    metrics,
    listen: (address) => listenOn(front, address),
    listenAdmin(address) {
      const server = http.createServer(adminHandler);
      adminServers.push(server);
      return listenOn(
        {
          listen: (host, port) =>
            new Promise((resolve, reject) => {
              server.once("error", reject);
              server.listen(port, host, () => resolve(server.address() as AddressInfo));
            }),
        },
        address,
      );
    },
    ready,
    routes,
    inFlight: calls.count,
    close(graceMs) {
      closing ??= close(graceMs ?? options.graceMs ?? defaults.graceMs);
      return closing;
    },
  };
}
