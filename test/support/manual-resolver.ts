import type { Endpoint, Resolver, ResolverListener } from "@meshlite/core";

/** A real Resolver whose endpoint set a test changes by hand. */
export interface ManualResolver extends Resolver {
  set(endpoints: Endpoint[]): void;
  fail(error: Error): void;
  readonly refreshes: number;
  readonly closed: boolean;
}

export function createManualResolver(initial?: Endpoint[]): ManualResolver {
  let listener: ResolverListener | undefined;
  let current = initial;
  let refreshes = 0;
  let closed = false;
  return {
    start(l) {
      listener = l;
      if (current) l.onEndpoints(current);
    },
    refresh() {
      refreshes++;
    },
    close() {
      closed = true;
    },
    set(endpoints) {
      current = endpoints;
      listener?.onEndpoints(endpoints);
    },
    fail(error) {
      listener?.onError(error);
    },
    get refreshes() {
      return refreshes;
    },
    get closed() {
      return closed;
    },
  };
}
