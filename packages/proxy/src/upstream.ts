import { getResolverFactory, type Logger } from "@meshlite/core";
import {
  createBalancer,
  createEndpointPool,
  createHttp2Connection,
  type EndpointPool,
  parseTarget,
  resolveOutlierDetection,
  type TlsOptions,
} from "meshlite";
import type { RouteOptions } from "./proxy-options.js";

/** The endpoints of one route: the channel's balancing core, without Connect's message layer. */
export interface Upstream {
  readonly name: string;
  readonly route: RouteOptions;
  readonly pool: EndpointPool;
  /** Closes the pool: stops resolving and closes every connection (resetting what is left). */
  destroy(): Promise<void>;
}

// Wider flow-control windows than HTTP/2's 64 KiB default: large messages and
// many multiplexed streams share one connection per endpoint.
export const http2Settings = { initialWindowSize: 4 * 1024 * 1024 } as const;
export const maxSessionMemoryMb = 256;

export function createUpstream(route: RouteOptions, logger: Logger): Upstream {
  const target = parseTarget(route.target);
  const name = route.name ?? route.target;
  const tls: TlsOptions | undefined = route.tls === true ? {} : route.tls || undefined;
  const origin = `${tls ? "https" : "http"}://${route.upstreamAuthority ?? target.authority}`;
  const resolver = getResolverFactory(target)(target, { logger, options: route.resolverOptions ?? {} });
  const pool = createEndpointPool({
    target,
    resolver,
    balancer: createBalancer(route.balancer),
    // Endpoints whose calls keep failing are ejected for a while, as in the channel.
    outlierDetection: resolveOutlierDetection(route.outlierDetection),
    logger,
    createConnection: (endpoint) =>
      createHttp2Connection({
        origin,
        address: endpoint,
        ...(tls ? { tls } : {}),
        sessionOptions: { settings: http2Settings, maxSessionMemory: maxSessionMemoryMb },
      }),
  });
  return {
    name,
    route,
    pool,
    destroy: () => pool.destroy(),
  };
}
