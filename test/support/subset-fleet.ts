// A socket-free fleet for subsetting: N client pools (the real pool, policy
// pipeline and p2c) over M servers whose connections are fakes that become
// ready a microtask after they are dialled. Used by test/subset-simulation
// and bench/subset.

import { type BalancerName, createBalancer } from "@meshlite/balancers";
import {
  type ConnectivityState,
  type Endpoint,
  formatHostPort,
  parseTarget,
  type Resolver,
  type ResolverListener,
  silentLogger,
} from "@meshlite/core";
import { createEndpointPool, type EndpointPool, resolveSubset, type SubsetOptions } from "@meshlite/pool";
import type { ConnectionEvent, EndpointConnection } from "@meshlite/transport/connection";

/** A fake connection: "connected" from connect() to disconnect(), ready a microtask after connect(). */
interface SimConnection extends EndpointConnection {
  readonly connected: boolean;
}

function createSimConnection(endpoint: Endpoint, dialled: { count: number }): SimConnection {
  let state: ConnectivityState = "idle";
  let connected = false;
  const listeners = new Set<(event: ConnectionEvent) => void>();
  const set = (next: ConnectivityState) => {
    if (next === state) return;
    state = next;
    for (const l of [...listeners]) l({ type: "state", state: next });
  };
  return {
    address: formatHostPort(endpoint.host, endpoint.port),
    state: () => state,
    lostStreams: () => 0,
    connectionCount: () => (connected ? 1 : 0),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    connect() {
      if (connected || state === "shutdown") return;
      connected = true;
      dialled.count++;
      set("connecting");
      queueMicrotask(() => {
        if (connected) set("ready");
      });
    },
    disconnect() {
      if (!connected) return;
      connected = false;
      set("idle");
    },
    async close() {
      connected = false;
      set("shutdown");
    },
    get connected() {
      return connected;
    },
  };
}

/** A resolver whose set the fleet changes. */
interface SimResolver extends Resolver {
  set(endpoints: Endpoint[]): void;
}

function createSimResolver(initial: Endpoint[]): SimResolver {
  let listener: ResolverListener | undefined;
  let current = initial;
  return {
    start(l) {
      listener = l;
      l.onEndpoints(current);
    },
    refresh() {},
    close() {},
    set(endpoints) {
      current = endpoints;
      listener?.onEndpoints(endpoints);
    },
  };
}

/** Server n's address, in 10.x.y.z. */
export function serverEndpoint(n: number): Endpoint {
  return { host: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, port: 8080 };
}

export interface SimClient {
  readonly pool: EndpointPool;
  readonly resolver: SimResolver;
  /** Connections dialled so far (opened, including re-dials). */
  readonly dialled: { count: number };
  /** Addresses held connected now. */
  connected(): Set<string>;
}

/** How the fleet's clients subset: deterministic aperture (rank among peers), random (rendezvous), none. */
export type FleetMode = "aperture" | "random" | "none";

/** Client n's own address (its peers are the other clients). */
export function clientEndpoint(n: number): Endpoint {
  return { host: `10.200.${(n >> 8) & 255}.${n & 255}`, port: 9090 };
}

/** Subset options of client n: aperture finds its rank among the peers by its own address. */
export function subsetOf(mode: FleetMode, size: number, n: number): SubsetOptions | false {
  if (mode === "none") return false;
  if (mode === "random") return { size, minEndpoints: 0, seed: `client-${n}` };
  return { size, minEndpoints: 0, peers: "dns:///peers.sim.test:9090", selfAddress: clientEndpoint(n).host };
}

export function createSimClient(
  servers: Endpoint[],
  subset: SubsetOptions | false,
  peers?: Resolver,
  balancer: BalancerName = "p2c",
): SimClient {
  const resolver = createSimResolver(servers);
  const dialled = { count: 0 };
  const connections: SimConnection[] = [];
  const pool = createEndpointPool({
    target: parseTarget("static:///sim.test:8080"),
    resolver,
    balancer: createBalancer(balancer, "simulation"),
    logger: silentLogger,
    outlierDetection: false,
    locality: false,
    slowStart: false,
    subset: resolveSubset(subset, "simulation: subset"),
    ...(peers ? { subsetPeers: peers } : {}),
    createConnection: (endpoint) => {
      const c = createSimConnection(endpoint, dialled);
      connections.push(c);
      return c;
    },
  });
  return {
    pool,
    resolver,
    dialled,
    connected: () => new Set(connections.filter((c) => c.connected).map((c) => c.address)),
  };
}

/** Lets the fake connections become ready (they do so a microtask after being dialled). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Sends `callsPerClient` calls from each client, taking turns; returns the calls each server got. */
export function sendCalls(clients: readonly SimClient[], callsPerClient: number): Map<string, number> {
  const calls = new Map<string, number>();
  const outcome = { ok: true, failure: false, pending: true, sample: true };
  for (let k = 0; k < callsPerClient; k++) {
    for (const client of clients) {
      const sc = client.pool.tryPick();
      if (sc === undefined) throw new Error("simulation: a client had no endpoint to pick");
      const startedAt = sc.begin();
      sc.end(startedAt, outcome);
      calls.set(sc.key, (calls.get(sc.key) ?? 0) + 1);
    }
  }
  return calls;
}

/** Mean, coefficient of variation, and the largest deviation from the mean (as a fraction of it). */
export function spread(values: readonly number[]): { mean: number; cv: number; maxDeviation: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  const maxDeviation = Math.max(...values.map((v) => Math.abs(v - mean))) / mean;
  return { mean, cv: Math.sqrt(variance) / mean, maxDeviation };
}

/** A fleet of clients over servers; the peers and the servers can change. */
export interface Fleet {
  readonly clients: SimClient[];
  servers: Endpoint[];
  /** Sets the servers every client resolves. */
  setServers(count: number): Promise<void>;
  /** Adds a client (and tells the others of their new peer). */
  addClient(): Promise<SimClient>;
  /** Connections held by each client now, by address. */
  held(): Set<string>[];
}

/** A fleet of `clients` x `servers`, with every client's connections up. */
export async function createFleet(
  mode: FleetMode,
  clients: number,
  servers: number,
  size: number,
  balancer: BalancerName = "p2c",
): Promise<Fleet> {
  let endpoints = Array.from({ length: servers }, (_, n) => serverEndpoint(n));
  const peerResolvers: SimResolver[] = [];
  let peers: Endpoint[] = Array.from({ length: clients }, (_, n) => clientEndpoint(n));
  const list: SimClient[] = [];
  const add = (n: number) => {
    const peerResolver = createSimResolver(peers);
    peerResolvers.push(peerResolver);
    const client = createSimClient(endpoints, subsetOf(mode, size, n), peerResolver, balancer);
    list.push(client);
    return client;
  };
  for (let n = 0; n < clients; n++) add(n);
  await settle();
  return {
    clients: list,
    get servers() {
      return endpoints;
    },
    async setServers(count) {
      endpoints = Array.from({ length: count }, (_, n) => serverEndpoint(n));
      for (const c of list) c.resolver.set(endpoints);
      await settle();
    },
    async addClient() {
      peers = [...peers, clientEndpoint(peers.length)];
      for (const r of peerResolvers) r.set(peers);
      const client = add(peers.length - 1);
      await settle();
      return client;
    },
    held: () => list.map((c) => c.connected()),
  };
}

/** Connections opened going from `before` to `after` (per client; a client new in `after` counts all of its own). */
export function opened(before: readonly Set<string>[], after: readonly Set<string>[]): number {
  let n = 0;
  after.forEach((set, i) => {
    const was = before[i] ?? new Set<string>();
    for (const a of set) if (!was.has(a)) n++;
  });
  return n;
}

/** Per-server call counts of every server (0 for those that got none). */
export function callsPerServer(servers: readonly Endpoint[], calls: ReadonlyMap<string, number>): number[] {
  return servers.map((e) => calls.get(formatHostPort(e.host, e.port)) ?? 0);
}

export async function closeFleet(clients: readonly SimClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.pool.destroy()));
}
