import { defaultResolvConfPath } from "./resolv-conf.js";

/**
 * Which address families a DNS resolver asks for and uses.
 *
 * - `dual`: A and AAAA; every address becomes its own endpoint (IPv4 first).
 * - `ipv4` / `ipv6`: only that family.
 * - `prefer-ipv4` / `prefer-ipv6`: that family when the name has addresses of
 *   it, else the other one.
 */
export type DnsFamily = "dual" | "ipv4" | "ipv6" | "prefer-ipv4" | "prefer-ipv6";

/**
 * Options of the `dns:` resolver, passed as the channel's `resolverOptions`.
 * Every field is optional.
 */
export interface DnsResolverOptions {
  /** Shortest time between two scheduled lookups, whatever the records' TTL says. Default 5000 ms. */
  minRefreshMs?: number;
  /** Longest time between two scheduled lookups, however long the TTL. Default 300000 ms (5 min). */
  maxRefreshMs?: number;
  /**
   * Random extra delay added to each scheduled lookup, as a fraction of it
   * (0.1 = up to 10% later), so that many clients do not ask at once. Default 0.1.
   */
  refreshJitter?: number;
  /**
   * Shortest time between two lookups asked for by `refresh()` (connection
   * lost, GOAWAY); calls in between are coalesced into one. Default 1000 ms.
   */
  refreshRateLimitMs?: number;
  /** Which address families to ask for and use. Default "dual". */
  family?: DnsFamily;
  /**
   * Look up SRV records and take each endpoint's port and weight from them.
   * `true` queries the target's host name as written (write the target as
   * `dns:///_grpc._tcp.orders.shop.svc.cluster.local`); a string is a prefix
   * put before the host name (`"_grpc._tcp"` turns `orders.shop` into
   * `_grpc._tcp.orders.shop`, and the target's port then only serves the
   * `:authority`). Only the records of the lowest priority are used. Default false.
   */
  srv?: boolean | string;
  /**
   * Accept an empty answer (NXDOMAIN, or no records) as an empty endpoint set.
   * When false, an empty answer counts as a failed lookup and the last good
   * set stays in force. Default false.
   */
  acceptEmpty?: boolean;
  /** Timeout of one DNS query try; c-ares doubles it on each further try. Default 2000 ms. */
  timeoutMs?: number;
  /** Tries per query and DNS server before giving up. Default 2. */
  tries?: number;
  /** First delay before retrying a failed lookup; later ones double (randomized x1-2). Default 1000 ms. */
  retryInitialMs?: number;
  /**
   * Longest delay between retries of a failed lookup. Default: minRefreshMs,
   * so a failing name is asked again at least as often as a healthy one is
   * refreshed, and the set follows within a refresh once DNS is back.
   */
  retryMaxMs?: number;
  /**
   * The resolv.conf whose `search`, `options ndots:N` and `nameserver` lines
   * apply (name servers only when the target names none). A missing file means
   * no search list and the system's name servers. Default "/etc/resolv.conf".
   */
  resolvConf?: string;
  /** Search list to use instead of the resolv.conf one. Default: from resolv.conf. */
  search?: readonly string[];
  /** `ndots` to use instead of the resolv.conf one. Default: from resolv.conf (1 when absent). */
  ndots?: number;
  /**
   * Also look up the gRPC service config in DNS (gRFC A2): the TXT record
   * `_grpc_config.<host>` whose value starts with `grpc_config=`, at every
   * lookup; its text goes to the listener's `onServiceConfig` when it
   * changes. A failed TXT query keeps the last one and never fails
   * resolution. The channel sets this for `dnsServiceConfig: true`. Default false.
   */
  serviceConfig?: boolean;
}

/** The options with every default applied. */
export type ResolvedDnsResolverOptions = Required<Omit<DnsResolverOptions, "search" | "ndots">> &
  Pick<DnsResolverOptions, "search" | "ndots">;

/** The defaults (retryMaxMs follows minRefreshMs, see there). */
export const defaultDnsResolverOptions: Readonly<Omit<ResolvedDnsResolverOptions, "retryMaxMs">> = {
  minRefreshMs: 5000,
  maxRefreshMs: 300_000,
  refreshJitter: 0.1,
  refreshRateLimitMs: 1000,
  family: "dual",
  srv: false,
  acceptEmpty: false,
  timeoutMs: 2000,
  tries: 2,
  retryInitialMs: 1000,
  resolvConf: defaultResolvConfPath,
  serviceConfig: false,
};

const families: readonly DnsFamily[] = ["dual", "ipv4", "ipv6", "prefer-ipv4", "prefer-ipv6"];
const labelPattern = /^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$/;

type Check = (value: unknown) => string | undefined;

function number(min: number, max = Number.POSITIVE_INFINITY, integer = false): Check {
  return (value) => {
    if (typeof value !== "number" || Number.isNaN(value) || value < min || value > max) {
      return `a number from ${min} to ${max === Number.POSITIVE_INFINITY ? "Infinity" : max}`;
    }
    if (integer && !Number.isInteger(value)) {
      return `an integer from ${min} to ${max}`;
    }
    return undefined;
  };
}

const checks: Record<keyof DnsResolverOptions, Check> = {
  minRefreshMs: number(0, 2_147_483_647),
  maxRefreshMs: number(0, 2_147_483_647),
  refreshJitter: number(0, 1),
  refreshRateLimitMs: number(0, 2_147_483_647),
  family: (value) =>
    families.includes(value as DnsFamily) ? undefined : `one of ${families.map((f) => `"${f}"`).join(", ")}`,
  srv: (value) =>
    typeof value === "boolean" ||
    (typeof value === "string" &&
      value !== "" &&
      value
        .replace(/\.$/, "")
        .split(".")
        .every((l) => labelPattern.test(l)))
      ? undefined
      : 'true, false or a name prefix such as "_grpc._tcp"',
  acceptEmpty: (value) => (typeof value === "boolean" ? undefined : "true or false"),
  timeoutMs: number(1, 2_147_483_647, true),
  tries: number(1, 100, true),
  retryInitialMs: number(0, 2_147_483_647),
  retryMaxMs: number(0, 2_147_483_647),
  resolvConf: (value) => (typeof value === "string" && value !== "" ? undefined : "a file path"),
  search: (value) =>
    Array.isArray(value) && value.every((d) => typeof d === "string" && d !== "")
      ? undefined
      : "an array of domain names",
  ndots: number(0, 15, true),
  serviceConfig: (value) => (typeof value === "boolean" ? undefined : "true or false"),
};

/**
 * Checks the channel's `resolverOptions` for the DNS resolver and applies
 * defaults. Throws an error naming the bad option, what it got and what is
 * accepted.
 */
export function resolveDnsResolverOptions(options: Readonly<Record<string, unknown>>): ResolvedDnsResolverOptions {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new TypeError(`invalid resolverOptions for the dns resolver: expected an object, got ${describe(options)}`);
  }
  const accepted = Object.keys(checks);
  for (const [key, value] of Object.entries(options)) {
    if (value === undefined) {
      continue;
    }
    const check = checks[key as keyof DnsResolverOptions];
    if (check === undefined) {
      throw new TypeError(
        `unknown resolverOptions field "${key}" for the dns resolver; accepted: ${accepted.join(", ")}`,
      );
    }
    const expected = check(value);
    if (expected !== undefined) {
      throw new TypeError(
        `invalid resolverOptions.${key} for the dns resolver: expected ${expected}, got ${describe(value)}`,
      );
    }
  }
  const defined = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
  const merged = { ...defaultDnsResolverOptions, ...defined } as Omit<ResolvedDnsResolverOptions, "retryMaxMs"> &
    Pick<DnsResolverOptions, "retryMaxMs">;
  const resolved: ResolvedDnsResolverOptions = {
    ...merged,
    retryMaxMs: merged.retryMaxMs ?? Math.max(merged.minRefreshMs, merged.retryInitialMs),
  };
  if (resolved.maxRefreshMs < resolved.minRefreshMs) {
    throw new TypeError(
      `invalid resolverOptions for the dns resolver: maxRefreshMs (${resolved.maxRefreshMs}) is below minRefreshMs (${resolved.minRefreshMs})`,
    );
  }
  if (resolved.retryMaxMs < resolved.retryInitialMs) {
    throw new TypeError(
      `invalid resolverOptions for the dns resolver: retryMaxMs (${resolved.retryMaxMs}) is below retryInitialMs (${resolved.retryInitialMs})`,
    );
  }
  return resolved;
}

function describe(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return "an array";
  }
  return value === null ? "null" : typeof value === "object" ? "an object" : `${typeof value} ${String(value)}`;
}

// `resolverOptions` of createChannel and the proxy's routes, typed per scheme.
declare module "@meshlite/core" {
  interface ResolverOptionsByScheme {
    dns: DnsResolverOptions;
    /** `static:` targets take no resolver options. */
    static: Record<string, never>;
  }
}
