import { type Endpoint, endpointKey, type Resolver } from "@meshlite/core";

/**
 * A resolver whose endpoints get their zone from `zones` (by `host:port`,
 * else by host) where the resolver reports none: zone attributes for
 * `static:` and `dns:` targets (locality.endpointZones).
 */
export function withEndpointZones(resolver: Resolver, zones: ReadonlyMap<string, string>): Resolver {
  if (zones.size === 0) return resolver;
  const zoned = (e: Endpoint): Endpoint => {
    if (e.zone) return e;
    const zone = zones.get(endpointKey(e)) ?? zones.get(e.host);
    return zone ? { ...e, zone } : e;
  };
  return {
    start(listener) {
      resolver.start({
        onEndpoints: (endpoints) => listener.onEndpoints(endpoints.map(zoned)),
        onError: (error) => listener.onError(error),
        ...(listener.onServiceConfig ? { onServiceConfig: listener.onServiceConfig.bind(listener) } : {}),
      });
    },
    refresh: () => resolver.refresh(),
    close: () => resolver.close(),
    ...(resolver.zoneOfNode ? { zoneOfNode: resolver.zoneOfNode.bind(resolver) } : {}),
  };
}
