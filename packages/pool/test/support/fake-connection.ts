import type { ConnectivityState, Endpoint, Resolver, ResolverListener } from "@meshlite/core";
import { formatHostPort } from "@meshlite/core";
import type { ConnectionEvent, EndpointConnection } from "@meshlite/transport/connection";

/** An endpoint connection without a socket: a test moves its state by hand. */
export interface FakeConnection extends EndpointConnection {
  set(state: ConnectivityState, error?: Error): void;
  readonly connects: number;
  readonly disconnects: number;
  /** Between connect() and disconnect() (or close()). */
  readonly connected: boolean;
  readonly closed: boolean;
}

export function createFakeConnection(endpoint: Endpoint): FakeConnection {
  let state: ConnectivityState = "idle";
  let connects = 0;
  let disconnects = 0;
  let connected = false;
  let closed = false;
  const listeners = new Set<(event: ConnectionEvent) => void>();
  const connection: FakeConnection = {
    address: formatHostPort(endpoint.host, endpoint.port),
    state: () => state,
    lostStreams: () => 0,
    connectionCount: () => 1,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    connect() {
      connects++;
      connected = true;
    },
    disconnect() {
      disconnects++;
      connected = false;
      connection.set("idle");
    },
    async close() {
      closed = true;
      connected = false;
    },
    set(next, error) {
      state = next;
      for (const l of [...listeners]) l({ type: "state", state: next, ...(error ? { error } : {}) });
    },
    get connects() {
      return connects;
    },
    get connected() {
      return connected;
    },
    get disconnects() {
      return disconnects;
    },
    get closed() {
      return closed;
    },
  };
  return connection;
}

/** A resolver whose set a test changes by hand. */
export interface FakeResolver extends Resolver {
  set(endpoints: Endpoint[]): void;
}

export function createFakeResolver(initial: Endpoint[]): FakeResolver {
  let listener: ResolverListener | undefined;
  return {
    start(l) {
      listener = l;
      l.onEndpoints(initial);
    },
    refresh() {},
    close() {},
    set(endpoints) {
      listener?.onEndpoints(endpoints);
    },
  };
}
