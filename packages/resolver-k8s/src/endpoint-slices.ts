import { type Endpoint, type EndpointHints, endpointKey } from "@meshlite/core";

/** The parts of a discovery.k8s.io/v1 EndpointSlice the resolver reads. */
export interface EndpointSlice {
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly addressType?: "IPv4" | "IPv6" | "FQDN";
  readonly endpoints?: readonly SliceEndpoint[] | null;
  /** Null or absent means "all ports" (a selector-less Service). */
  readonly ports?: readonly SlicePort[] | null;
}

/** One endpoint of an EndpointSlice. */
export interface SliceEndpoint {
  /** Fungible addresses of one pod; consumers may use the first only. */
  readonly addresses: readonly string[];
  readonly conditions?: {
    /** Null means ready. */
    readonly ready?: boolean | null;
    /** Like ready, but also set while terminating. Null means serving. */
    readonly serving?: boolean | null;
    /** Null means not terminating. */
    readonly terminating?: boolean | null;
  };
  readonly nodeName?: string | null;
  readonly zone?: string | null;
  /** Where this endpoint's traffic should come from (topology-aware routing, trafficDistribution). */
  readonly hints?: {
    readonly forZones?: readonly { readonly name: string }[] | null;
    readonly forNodes?: readonly { readonly name: string }[] | null;
  } | null;
  /** The object behind the endpoint, usually its Pod. */
  readonly targetRef?: { readonly kind?: string; readonly name?: string; readonly namespace?: string } | null;
}

/** One port of an EndpointSlice (a target port, named after the Service port). */
export interface SlicePort {
  readonly name?: string | null;
  readonly port?: number | null;
  readonly protocol?: string | null;
}

/**
 * Finds the port to dial in one slice: by name (the Service port's name) or
 * by number (the pod's port). Returns a reason instead when the slice has no
 * such port.
 */
function slicePort(slice: EndpointSlice, port: number | string): number | { problem: string } {
  const ports = (slice.ports ?? []).filter((p) => p.protocol == null || p.protocol === "TCP");
  if (slice.ports == null) {
    // "All ports": only a number can be dialled.
    return typeof port === "number" ? port : { problem: `it lists no ports, so the port name "${port}" is unknown` };
  }
  const found = ports.find((p) => (typeof port === "string" ? (p.name ?? "") === port : p.port === port));
  if (found?.port != null) {
    return found.port;
  }
  const listed = ports.map((p) => `${p.name || "(unnamed)"}=${p.port}`).join(", ") || "none";
  return {
    problem:
      typeof port === "string"
        ? `it has no TCP port named "${port}" (ports: ${listed})`
        : `it has no TCP port ${port} (ports: ${listed}); a number in a k8s target is the pod's port, not the Service's: write the pod port or the port name`,
  };
}

/** How an endpoint of a slice is used: takes calls, drains, or is left out. */
function endpointState(endpoint: SliceEndpoint): "ready" | "draining" | "dropped" {
  const conditions = endpoint.conditions ?? {};
  if (conditions.terminating === true) {
    // Terminating pods are never ready; while still serving they finish their calls.
    return conditions.serving === false ? "dropped" : "draining";
  }
  return conditions.ready === false ? "dropped" : "ready";
}

/**
 * The hints of an endpoint: the slice's, else what the Service's
 * `spec.trafficDistribution` asks for (`PreferClose` / `PreferSameZone`: the
 * endpoint's own zone; `PreferSameNode`: its node, then its zone), for slices
 * the controller has not given hints (yet).
 */
function hintsOf(item: SliceEndpoint, trafficDistribution: string | undefined): EndpointHints | undefined {
  const forZones = (item.hints?.forZones ?? []).map((z) => z.name).filter((n) => typeof n === "string" && n !== "");
  const forNodes = (item.hints?.forNodes ?? []).map((z) => z.name).filter((n) => typeof n === "string" && n !== "");
  if (forZones.length === 0 && forNodes.length === 0) {
    const sameNode = trafficDistribution === "PreferSameNode";
    const sameZone = sameNode || trafficDistribution === "PreferClose" || trafficDistribution === "PreferSameZone";
    if (sameNode && item.nodeName) forNodes.push(item.nodeName);
    if (sameZone && item.zone) forZones.push(item.zone);
  }
  if (forZones.length === 0 && forNodes.length === 0) return undefined;
  return { ...(forZones.length > 0 ? { forZones } : {}), ...(forNodes.length > 0 ? { forNodes } : {}) };
}

/**
 * Merges every slice of a service into one endpoint set, de-duplicated by
 * address (an endpoint can appear in two slices while the controller moves
 * it); a ready copy wins over a draining one. Slices are taken in name order
 * so that the same slices always give the same order.
 */
export function mergeSlices(
  slices: Iterable<EndpointSlice>,
  port: number | string,
  onPortProblem: (slice: EndpointSlice, problem: string) => void,
  trafficDistribution?: string,
): Endpoint[] {
  const merged = new Map<string, Endpoint>();
  const sorted = [...slices].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  for (const slice of sorted) {
    const resolved = slicePort(slice, port);
    if (typeof resolved !== "number") {
      if ((slice.endpoints ?? []).length > 0) {
        onPortProblem(slice, resolved.problem);
      }
      continue;
    }
    for (const item of slice.endpoints ?? []) {
      const host = item.addresses?.[0];
      const state = endpointState(item);
      if (host === undefined || state === "dropped") {
        continue;
      }
      const hints = hintsOf(item, trafficDistribution);
      const endpoint: Endpoint = {
        host,
        port: resolved,
        ...(state === "draining" ? { draining: true } : {}),
        ...(item.zone ? { zone: item.zone } : {}),
        ...(item.nodeName ? { nodeName: item.nodeName } : {}),
        ...(hints ? { hints } : {}),
        // The pod name outlives no restart, but it stays the same while the
        // pod does: a stable key for hashing balancers.
        ...(item.targetRef?.name ? { hashKey: item.targetRef.name } : {}),
      };
      const key = endpointKey(endpoint);
      const existing = merged.get(key);
      if (existing === undefined || (existing.draining && !endpoint.draining)) {
        merged.set(key, endpoint);
      }
    }
  }
  return [...merged.values()];
}
