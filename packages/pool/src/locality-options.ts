import { assertKnownKeys } from "@meshlite/core";

/**
 * What the locality policy prefers: `"node"` (same node, then same zone),
 * `"zone"` (same zone) or `"none"`.
 */
export type LocalityPreference = "node" | "zone" | "none";

/** A load band: `ratio` times a reference and at least `ms` above it. */
export interface LocalityBand {
  /** Times the reference latency. */
  ratio?: number;
  /** Milliseconds above the reference latency. */
  ms?: number;
}

/**
 * Zone- and node-aware routing: which endpoints are local, the guardrails
 * that turn the preference off, and when load spills over to other zones.
 */
export interface LocalityOptions {
  /**
   * The client's zone. Default: the environment variable MESHLITE_ZONE, else
   * (k8s targets, with RBAC `get nodes`) the `topology.kubernetes.io/zone`
   * label of the client's node; unknown turns locality off (one info log).
   */
  zone?: string;
  /** The client's node name. Default: the environment variable NODE_NAME (downward API `spec.nodeName`). */
  node?: string;
  /**
   * What to prefer: `"node"` (the client's node, then its zone), `"zone"` or
   * `"none"`. Default: follow the endpoints' topology hints (the Service's
   * `trafficDistribution` with k8s targets); no preference without hints.
   */
  prefer?: LocalityPreference;
  /**
   * Zones of endpoints whose resolver reports none (`static:` and `dns:`
   * targets), by `host:port` or by host: `{ "10.0.1.7": "eu-west-1a" }`.
   * A zone the resolver reports wins. Default: none.
   */
  endpointZones?: Readonly<Record<string, string>>;
  /** The local zone needs at least this many endpoints that can take calls, else no preference. Default 2. */
  minEndpoints?: number;
  /**
   * When fewer than this share (percent) of the local endpoints can take
   * calls (the others connecting, unhealthy, ejected or draining), no
   * preference (a panic threshold). Default 50.
   */
  panicThresholdPercent?: number;
  /**
   * Spill over to the nearest other zone when the local latency is above
   * both `ratio` x and `ms` + the reference (the nearest other zone's
   * latency if measured in the last 10 s, else the lowest the local zone
   * showed), two checks in a row.
   * Default { ratio: 2, ms: 5 }.
   */
  spillAt?: LocalityBand;
  /**
   * Come back when the local latency is within `ratio` x or `ms` + the
   * latency of the zone spilled to, four checks in a row. Default { ratio: 1.25, ms: 2 }.
   */
  returnAt?: LocalityBand;
  /** How often local and remote load are compared. Default 500 ms. */
  intervalMs?: number;
  /**
   * Least time spent spilling before coming back; doubled (up to 60 s) each
   * time it spills again within a minute of coming back, so traffic does not
   * flap. Default 5000 ms.
   */
  holdMs?: number;
}

/** Locality options after validation, with defaults. */
export interface ResolvedLocality {
  zone: string | undefined;
  node: string | undefined;
  prefer: LocalityPreference | undefined;
  endpointZones: ReadonlyMap<string, string>;
  minEndpoints: number;
  panicThresholdPercent: number;
  spillAt: Required<LocalityBand>;
  returnAt: Required<LocalityBand>;
  intervalMs: number;
  holdMs: number;
}

const keys = [
  "zone",
  "node",
  "prefer",
  "endpointZones",
  "minEndpoints",
  "panicThresholdPercent",
  "spillAt",
  "returnAt",
  "intervalMs",
  "holdMs",
] as const;
const bandKeys = ["ratio", "ms"] as const;
const preferences: readonly LocalityPreference[] = ["node", "zone", "none"];

/** Checks locality options and fills in defaults; `where` names the option in messages ("createChannel: locality"). */
export function resolveLocality(options: LocalityOptions | false | undefined, where: string): ResolvedLocality | false {
  if (options === false) return false;
  const o = options ?? {};
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new TypeError(`${where} must be an object or false, got ${JSON.stringify(o)}`);
  }
  assertKnownKeys(o, keys, where);
  for (const key of ["zone", "node"] as const) {
    if (o[key] !== undefined && (typeof o[key] !== "string" || o[key] === "")) {
      throw new TypeError(`${where}.${key} must be a non-empty string, got ${JSON.stringify(o[key])}`);
    }
  }
  if (o.prefer !== undefined && !preferences.includes(o.prefer)) {
    throw new TypeError(
      `${where}.prefer: unknown preference ${JSON.stringify(o.prefer)}; expected "node", "zone" or "none" (or leave it out to follow the endpoints' hints)`,
    );
  }
  const endpointZones = new Map<string, string>();
  if (o.endpointZones !== undefined) {
    if (typeof o.endpointZones !== "object" || o.endpointZones === null || Array.isArray(o.endpointZones)) {
      throw new TypeError(`${where}.endpointZones must be an object { "host:port" or "host": "zone" }`);
    }
    for (const [address, zone] of Object.entries(o.endpointZones)) {
      if (typeof zone !== "string" || zone === "") {
        throw new TypeError(
          `${where}.endpointZones[${JSON.stringify(address)}] must be a zone name, got ${JSON.stringify(zone)}`,
        );
      }
      endpointZones.set(address, zone);
    }
  }
  const number = (key: string, value: unknown, fallback: number, min: number) => {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
      throw new TypeError(`${where}.${key} must be a number >= ${min}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const band = (key: "spillAt" | "returnAt", fallback: Required<LocalityBand>): Required<LocalityBand> => {
    const b = o[key];
    if (b === undefined) return fallback;
    if (typeof b !== "object" || b === null) throw new TypeError(`${where}.${key} must be an object { ratio, ms }`);
    assertKnownKeys(b, bandKeys, `${where}.${key}`);
    return {
      ratio: number(`${key}.ratio`, b.ratio, fallback.ratio, 1),
      ms: number(`${key}.ms`, b.ms, fallback.ms, 0),
    };
  };
  return {
    zone: o.zone,
    node: o.node,
    prefer: o.prefer,
    endpointZones,
    minEndpoints: number("minEndpoints", o.minEndpoints, 2, 1),
    panicThresholdPercent: number("panicThresholdPercent", o.panicThresholdPercent, 50, 0),
    spillAt: band("spillAt", { ratio: 2, ms: 5 }),
    returnAt: band("returnAt", { ratio: 1.25, ms: 2 }),
    intervalMs: number("intervalMs", o.intervalMs, 500, 10),
    holdMs: number("holdMs", o.holdMs, 5000, 0),
  };
}
