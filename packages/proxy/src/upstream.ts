import type { Logger } from "@meshlite/core";
import { createPool, type EndpointPool } from "@meshlite/pool";
import {
  createFrameEngineConnection,
  createHttp2Connection,
  type H2StreamConnection,
  nodeH2StreamConnection,
} from "@meshlite/transport/connection";
import type { ProxyEngine, RouteOptions } from "./proxy-options.js";

/** The endpoints of one route: the balancing core, without Connect's message layer. */
export interface Upstream {
  readonly name: string;
  readonly route: RouteOptions;
  readonly pool: EndpointPool<H2StreamConnection>;
  /** Closes the pool: stops resolving and closes every connection (resetting what is left). */
  destroy(): Promise<void>;
}

// Wider flow-control windows than HTTP/2's 64 KiB default: large messages and
// many multiplexed streams share one connection per endpoint.
export const http2Settings = { initialWindowSize: 4 * 1024 * 1024 } as const;
export const maxSessionMemoryMb = 256;

export function createUpstream(
  route: RouteOptions,
  index: number,
  waitForReadyMs: number,
  logger: Logger,
  engine: ProxyEngine = "streams",
): Upstream {
  const pool = createPool({
    api: `proxy: routes[${index}]`,
    target: route.target,
    logger,
    waitForReadyMs,
    ...(route.balancer ? { balancer: route.balancer } : {}),
    ...(route.resolverOptions ? { resolverOptions: route.resolverOptions } : {}),
    ...(route.tls !== undefined ? { tls: route.tls } : {}),
    ...(route.upstreamAuthority ? { authority: route.upstreamAuthority } : {}),
    ...(route.keepalive ? { keepalive: route.keepalive } : {}),
    // Endpoints whose calls keep failing are ejected for a while, as in the channel.
    ...(route.outlierDetection !== undefined ? { outlierDetection: route.outlierDetection } : {}),
    ...(route.locality !== undefined ? { locality: route.locality } : {}),
    // Slow start, the overload penalty and concurrency limits, as in the channel (on, on, maxPending only by default).
    ...(route.slowStart !== undefined ? { slowStart: route.slowStart } : {}),
    ...(route.subset !== undefined ? { subset: route.subset } : {}),
    ...(route.overloadPenalty !== undefined ? { overloadPenalty: route.overloadPenalty } : {}),
    ...(route.limits !== undefined ? { limits: route.limits } : {}),
    sessionOptions: { settings: http2Settings, maxSessionMemory: maxSessionMemoryMb },
    connection:
      engine === "frames"
        ? (options) =>
            createFrameEngineConnection(options, {
              initialWindowSize: http2Settings.initialWindowSize,
              // As node:http2's session memory: slow readers' streams hold back only themselves.
              maxBufferedBytes: maxSessionMemoryMb * 1024 * 1024,
            })
        : (options) => nodeH2StreamConnection(createHttp2Connection(options)),
  });
  return {
    name: route.name ?? route.target,
    route,
    pool,
    destroy: () => pool.destroy(),
  };
}
