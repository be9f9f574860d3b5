import type { Resolver, ResolverContext, StaticTarget } from "@meshlite/core";

/**
 * The resolver of `static:`, `ipv4:` and `ipv6:` targets: reports the listed
 * addresses once. Host names in the list are dialled as they are (the
 * operating system resolves them at connect time).
 */
export function createStaticResolver(target: StaticTarget, _context?: ResolverContext): Resolver {
  return {
    start(listener) {
      listener.onEndpoints(target.addresses.map(({ host, port }) => ({ host, port })));
    },
    refresh() {},
    close() {},
  };
}
