import { hostname } from "node:os";
import { assertKnownKeys, parseTarget } from "@meshlite/core";

/** The environment variable the client's own pod IP is read from (downward API `status.podIP`). */
export const podIpEnv = "POD_IP";

/**
 * Subsetting: the client connects to, and picks among, a small share of the
 * endpoints instead of all of them, so N clients x M servers do not make
 * N x M connections.
 */
export interface SubsetOptions {
  /** Endpoints in the subset (servers' worth of the aperture). Default 12. */
  size?: number;
  /** Below this many resolved endpoints the subset is off and every endpoint is used. Default 50. */
  minEndpoints?: number;
  /**
   * A target that resolves to the client's own peers (its own Service), e.g.
   * `k8s:///checkout.shop:http`: the client finds its rank among them by its
   * own address (`selfAddress`) and follows them live. Any scheme works
   * (`dns:`, `static:`); `k8s:` needs `@meshlite/resolver-k8s` imported.
   * Default: none (`rank`/`count`, else a rendezvous-hash subset).
   */
  peers?: string;
  /**
   * Options of the peers target's resolver (as `resolverOptions` of the
   * channel). Default: the channel's `resolverOptions` when the peers target
   * has the same scheme as the channel's target, else none.
   */
  peersResolverOptions?: Readonly<Record<string, unknown>>;
  /** The client's own address among its peers. Default: the environment variable POD_IP. */
  selfAddress?: string;
  /**
   * Widen the subset while its members are busy, and narrow it back with
   * hysteresis (see SubsetWidenOptions); `true` for the defaults. Default: off.
   */
  widen?: SubsetWidenOptions | boolean;
  /** The client's position among `count` clients (0-based), for static fleets; with `count`. Default: none. */
  rank?: number;
  /** How many clients share the endpoints, with `rank`. Default: none. */
  count?: number;
  /**
   * Seed of the rendezvous-hash subset used when the rank is unknown: the
   * same seed gives the same subset. Default: the host name (the pod name).
   */
  seed?: string;
}

/**
 * Widening under load (Finagle's load band): when the members' average calls
 * in flight stay above `highInFlight`, the subset grows by `step`; once they
 * stay below `lowInFlight`, it shrinks back by `step`, down to `size`.
 */
export interface SubsetWidenOptions {
  /** Average calls in flight per member above which the subset widens (two checks in a row). Default 8. */
  highInFlight?: number;
  /** Average calls in flight per member below which it narrows again (five checks in a row). Default 2. */
  lowInFlight?: number;
  /** Endpoints added or removed per step. Default 2. */
  step?: number;
  /** The widest the subset gets. Default 4 x size. */
  maxSize?: number;
  /** How often the load is checked, ms. Default 1000. */
  intervalMs?: number;
}

/** Subset options after validation, with defaults. */
export interface ResolvedSubset {
  size: number;
  minEndpoints: number;
  peers: string | undefined;
  peersResolverOptions: Readonly<Record<string, unknown>> | undefined;
  selfAddress: string | undefined;
  rank: number | undefined;
  count: number | undefined;
  seed: string;
  widen: Required<SubsetWidenOptions> | false;
}

const keys = [
  "size",
  "minEndpoints",
  "peers",
  "peersResolverOptions",
  "selfAddress",
  "rank",
  "count",
  "seed",
  "widen",
] as const;
const widenKeys = ["highInFlight", "lowInFlight", "step", "maxSize", "intervalMs"] as const;

/**
 * Checks subset options and fills in defaults; `where` names the option in
 * messages ("createChannel: subset"). `false` and undefined turn it off;
 * `true` turns it on with the defaults.
 */
export function resolveSubset(
  options: SubsetOptions | boolean | undefined,
  where: string,
  env: NodeJS.ProcessEnv = process.env,
): ResolvedSubset | false {
  if (options === false || options === undefined) return false;
  const o = options === true ? {} : options;
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new TypeError(
      `${where} must be an object { size, minEndpoints, peers, selfAddress, rank, count, seed }, true or false, got ${JSON.stringify(o)}`,
    );
  }
  assertKnownKeys(o, keys, where);
  const whole = (key: string, value: unknown, fallback: number | undefined, min: number) => {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
      throw new TypeError(`${where}.${key} must be a whole number >= ${min}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const size = whole("size", o.size, 12, 1) as number;
  const minEndpoints = whole("minEndpoints", o.minEndpoints, 50, 0) as number;
  const rank = whole("rank", o.rank, undefined, 0);
  const count = whole("count", o.count, undefined, 1);
  if ((rank === undefined) !== (count === undefined)) {
    throw new TypeError(
      `${where}: rank and count go together (rank from 0 to count - 1); got only ${rank === undefined ? "count" : "rank"}`,
    );
  }
  if (rank !== undefined && count !== undefined && rank >= count) {
    throw new TypeError(`${where}.rank must be below count (0 to ${count - 1}), got ${rank}`);
  }
  for (const key of ["peers", "selfAddress", "seed"] as const) {
    if (o[key] !== undefined && (typeof o[key] !== "string" || o[key] === "")) {
      throw new TypeError(`${where}.${key} must be a non-empty string, got ${JSON.stringify(o[key])}`);
    }
  }
  if (o.peers !== undefined && rank !== undefined) {
    throw new TypeError(`${where}: give peers (found live) or rank and count (fixed), not both`);
  }
  if (o.peers !== undefined) {
    try {
      parseTarget(o.peers);
    } catch (e) {
      throw new TypeError(`${where}.peers: ${(e as Error).message}`);
    }
  }
  const peersResolverOptions = o.peersResolverOptions;
  if (
    peersResolverOptions !== undefined &&
    (typeof peersResolverOptions !== "object" || peersResolverOptions === null || Array.isArray(peersResolverOptions))
  ) {
    throw new TypeError(
      `${where}.peersResolverOptions must be an object (the peers resolver's options), got ${JSON.stringify(peersResolverOptions)}`,
    );
  }
  if (peersResolverOptions !== undefined && o.peers === undefined) {
    throw new TypeError(`${where}.peersResolverOptions needs peers (a target of the client's own peers)`);
  }
  const selfAddress = o.selfAddress ?? (env[podIpEnv] || undefined);
  return {
    size,
    minEndpoints,
    peers: o.peers,
    peersResolverOptions,
    selfAddress: selfAddress === undefined ? undefined : hostOf(selfAddress),
    rank,
    count,
    seed: o.seed ?? hostname(),
    widen: resolveWiden(o.widen, size, `${where}.widen`),
  };
}

function resolveWiden(
  options: SubsetWidenOptions | boolean | undefined,
  size: number,
  where: string,
): Required<SubsetWidenOptions> | false {
  if (options === undefined || options === false) return false;
  const o = options === true ? {} : options;
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new TypeError(
      `${where} must be an object { highInFlight, lowInFlight, step, maxSize, intervalMs }, true or false, got ${JSON.stringify(o)}`,
    );
  }
  assertKnownKeys(o, widenKeys, where);
  const number = (key: string, value: unknown, fallback: number, min: number, whole = false) => {
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value < min || (whole && !Number.isInteger(value))) {
      throw new TypeError(
        `${where}.${key} must be a ${whole ? "whole " : ""}number >= ${min}, got ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
  const highInFlight = number("highInFlight", o.highInFlight, 8, 0);
  const lowInFlight = number("lowInFlight", o.lowInFlight, Math.min(2, highInFlight / 2), 0);
  if (lowInFlight >= highInFlight) {
    throw new TypeError(`${where}: lowInFlight (${lowInFlight}) must be below highInFlight (${highInFlight})`);
  }
  return {
    highInFlight,
    lowInFlight,
    step: number("step", o.step, 2, 1, true),
    maxSize: number("maxSize", o.maxSize, 4 * size, size, true),
    intervalMs: number("intervalMs", o.intervalMs, 1000, 10),
  };
}

/** The host of `host`, `host:port`, `[v6]` or `[v6]:port`: peers are matched by host only. */
export function hostOf(address: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (bracketed) return bracketed[1] as string;
  const parts = address.split(":");
  return parts.length === 2 ? (parts[0] as string) : address;
}
