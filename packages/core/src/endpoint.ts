/**
 * One address a service can be reached at: a pod, a VM, a process.
 * Resolvers produce endpoints; the channel holds one connection per endpoint.
 */
export interface Endpoint {
  /** IP address (or host name, for static lists) to dial. */
  readonly host: string;
  /** TCP port to dial. */
  readonly port: number;
  /** Relative weight, from SRV records for example. Defaults to 1. */
  readonly weight?: number;
  /**
   * The endpoint is still serving but takes no new calls (a terminating pod):
   * its in-flight calls finish, then its connection closes.
   */
  readonly draining?: boolean;
  /** Topology zone, where the resolver knows it (Kubernetes). */
  readonly zone?: string;
  /** Node name, where the resolver knows it (Kubernetes). */
  readonly nodeName?: string;
  /**
   * A name that stays the same while the endpoint's address may change, for
   * hashing balancers (ring-hash, affinity): the pod name in Kubernetes.
   * Default: none (balancers then use the `host:port` key).
   */
  readonly hashKey?: string;
  /** Free-form labels the resolver knows (or a custom resolver sets). Default: none. */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * Where the server side asks this endpoint's traffic to come from
   * (Kubernetes EndpointSlice `hints`): clients in `forZones` / on `forNodes`
   * should prefer it. The locality policy follows them by default. Default: none.
   */
  readonly hints?: EndpointHints;
}

/** Topology hints of an endpoint (EndpointSlice `hints.forZones` / `hints.forNodes`). */
export interface EndpointHints {
  /** Zones whose clients should use this endpoint. */
  readonly forZones?: readonly string[];
  /** Nodes whose clients should use this endpoint. */
  readonly forNodes?: readonly string[];
}

/**
 * The identity of an endpoint in a set: `host:port`, with IPv6 hosts in
 * brackets. Two endpoints with the same key share one connection.
 */
export function endpointKey(endpoint: Pick<Endpoint, "host" | "port">): string {
  return formatHostPort(endpoint.host, endpoint.port);
}

/** Formats a host and port as `host:port`, bracketing IPv6 addresses. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Whether two endpoint lists describe the same set (order does not matter;
 * weight, draining, topology, hash key and labels do).
 */
export function sameEndpoints(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  if (a.length !== b.length) {
    return false;
  }
  const byKey = new Map(a.map((e) => [endpointKey(e), e]));
  for (const e of b) {
    const other = byKey.get(endpointKey(e));
    if (
      other === undefined ||
      (other.weight ?? 1) !== (e.weight ?? 1) ||
      (other.draining ?? false) !== (e.draining ?? false) ||
      other.zone !== e.zone ||
      other.nodeName !== e.nodeName ||
      other.hashKey !== e.hashKey ||
      !sameLabels(other.labels, e.labels) ||
      !sameHints(other.hints, e.hints)
    ) {
      return false;
    }
  }
  return true;
}

function sameLabels(a: Endpoint["labels"], b: Endpoint["labels"]): boolean {
  if (a === b) return true;
  const ka = Object.keys(a ?? {});
  if (ka.length !== Object.keys(b ?? {}).length) return false;
  return ka.every((k) => a?.[k] === b?.[k]);
}

function sameHints(a: EndpointHints | undefined, b: EndpointHints | undefined): boolean {
  return sameList(a?.forZones, b?.forZones) && sameList(a?.forNodes, b?.forNodes);
}

function sameList(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  if ((a?.length ?? 0) !== (b?.length ?? 0)) return false;
  return (a ?? []).every((x, i) => x === b?.[i]);
}
