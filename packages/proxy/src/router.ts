import type { RouteOptions } from "./proxy-options.js";

/** Picks the route of a call by `:authority` and gRPC service name. */
export interface Router<T> {
  /** The first route matching the authority and service, or undefined. */
  match(authority: string | undefined, service: string | undefined): T | undefined;
  /** The route keys, for an error message about a call that matched none. */
  describe(): string;
}

export function createRouter<T extends { route: RouteOptions }>(routes: readonly T[]): Router<T> {
  const hostOnly = (authority: string) => {
    if (authority.startsWith("[")) return authority.slice(0, authority.indexOf("]") + 1);
    const colon = authority.lastIndexOf(":");
    return colon >= 0 ? authority.slice(0, colon) : authority;
  };
  const matchers = routes.map((entry) => {
    const want = entry.route.authority?.toLowerCase();
    const wantHasPort = want !== undefined && hostOnly(want) !== want;
    return {
      entry,
      service: entry.route.service,
      authority: (authority: string | undefined) => {
        if (want === undefined) return true;
        if (authority === undefined) return false;
        const got = authority.toLowerCase();
        return wantHasPort ? got === want : hostOnly(got) === want || got === want;
      },
    };
  });
  return {
    match(authority, service) {
      for (const m of matchers) {
        if ((m.service === undefined || m.service === service) && m.authority(authority)) return m.entry;
      }
      return undefined;
    },
    describe() {
      return routes
        .map(({ route }) => `{authority: ${route.authority ?? "*"}, service: ${route.service ?? "*"}}`)
        .join(", ");
    },
  };
}
