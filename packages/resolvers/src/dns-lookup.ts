import type { promises as dns, SrvRecord } from "node:dns";
import { isIP } from "node:net";
import { type Endpoint, endpointKey } from "@meshlite/core";
import { type DnsAttempt, DnsResolutionError, dnsErrorKind, isEmptyAnswer } from "./dns-errors.js";
import type { DnsFamily } from "./dns-resolver-options.js";

/** What one lookup found. */
export interface DnsLookupResult {
  /** The endpoints, empty when the name had no answer (only with acceptEmpty). */
  readonly endpoints: Endpoint[];
  /** Smallest TTL of the records used, in seconds; undefined when none was seen. */
  readonly ttlSeconds: number | undefined;
  /**
   * Address families whose query failed while the other one answered: their
   * endpoints are unknown, not gone (the caller keeps the previous ones).
   */
  readonly failedFamilies: readonly (4 | 6)[];
}

/** What a lookup needs besides the c-ares resolver. */
export interface DnsLookupConfig {
  /** The target's host name, for error messages. */
  readonly host: string;
  /** Names to try in order (the search list applied). */
  readonly names: readonly string[];
  /** The port of every endpoint (not in SRV mode). */
  readonly port: number;
  readonly family: DnsFamily;
  /** Query SRV records of `names` instead of addresses. */
  readonly srv: boolean;
  /** Return an empty set instead of throwing on an empty answer. */
  readonly acceptEmpty: boolean;
}

type FamilyAnswer =
  | { readonly ok: true; readonly addresses: string[]; readonly ttl: number | undefined }
  | { readonly ok: false; readonly attempt: DnsAttempt };

type NameAnswer =
  | { readonly kind: "found"; readonly v4: string[]; readonly v6: string[]; ttl: number | undefined; failed: (4 | 6)[] }
  | { readonly kind: "empty" | "failed"; readonly attempts: DnsAttempt[] };

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

function minTtl(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}

async function queryFamily(resolver: dns.Resolver, name: string, family: 4 | 6): Promise<FamilyAnswer> {
  const type = family === 4 ? "A" : "AAAA";
  try {
    const records =
      family === 4 ? await resolver.resolve4(name, { ttl: true }) : await resolver.resolve6(name, { ttl: true });
    if (records.length === 0) {
      return { ok: false, attempt: { name, type, kind: "nodata", code: undefined } };
    }
    let ttl: number | undefined;
    for (const record of records) {
      ttl = minTtl(ttl, record.ttl);
    }
    return { ok: true, addresses: [...new Set(records.map((r) => r.address))], ttl };
  } catch (error) {
    const code = errorCode(error);
    return { ok: false, attempt: { name, type, kind: dnsErrorKind(code), code } };
  }
}

/** Merges per-type failures of one name into one attempt when they agree. */
function merged(name: string, answers: readonly FamilyAnswer[]): DnsAttempt[] {
  const attempts = answers.flatMap((a) => (a.ok ? [] : [a.attempt]));
  const first = attempts[0];
  if (first !== undefined && attempts.every((a) => a.code === first.code && a.kind === first.kind)) {
    return [{ name, type: attempts.length > 1 ? undefined : first.type, kind: first.kind, code: first.code }];
  }
  return attempts;
}

function found(answers: readonly [4 | 6, FamilyAnswer][]): NameAnswer {
  const result = {
    kind: "found" as const,
    v4: [] as string[],
    v6: [] as string[],
    ttl: undefined as number | undefined,
    failed: [] as (4 | 6)[],
  };
  for (const [family, answer] of answers) {
    if (answer.ok) {
      result[family === 4 ? "v4" : "v6"].push(...answer.addresses);
      result.ttl = minTtl(result.ttl, answer.ttl);
    } else if (!isEmptyAnswer(answer.attempt.kind)) {
      result.failed.push(family);
    }
  }
  return result;
}

/** Looks up the addresses of one name (no search list) per the family option. */
async function lookupName(resolver: dns.Resolver, name: string, family: DnsFamily): Promise<NameAnswer> {
  if (family === "dual") {
    const [v4, v6] = await Promise.all([queryFamily(resolver, name, 4), queryFamily(resolver, name, 6)]);
    if (v4.ok || v6.ok) {
      return found([
        [4, v4],
        [6, v6],
      ]);
    }
    const attempts = merged(name, [v4, v6]);
    return { kind: attempts.every((a) => isEmptyAnswer(a.kind)) ? "empty" : "failed", attempts };
  }
  const first: 4 | 6 = family === "ipv4" || family === "prefer-ipv4" ? 4 : 6;
  const answer = await queryFamily(resolver, name, first);
  if (answer.ok) {
    return found([[first, answer]]);
  }
  const prefer = family === "prefer-ipv4" || family === "prefer-ipv6";
  // NXDOMAIN holds for every type; only "no records of this type" sends us to the other family.
  if (!prefer || answer.attempt.kind !== "nodata") {
    return { kind: isEmptyAnswer(answer.attempt.kind) ? "empty" : "failed", attempts: [answer.attempt] };
  }
  const other: 4 | 6 = first === 4 ? 6 : 4;
  const second = await queryFamily(resolver, name, other);
  if (second.ok) {
    return found([[other, second]]);
  }
  return {
    kind: isEmptyAnswer(second.attempt.kind) ? "empty" : "failed",
    attempts: [answer.attempt, second.attempt],
  };
}

function servers(resolver: dns.Resolver): string[] {
  try {
    return resolver.getServers();
  } catch {
    return [];
  }
}

/** Address records: the first name of the search list that has any. */
async function lookupAddresses(resolver: dns.Resolver, config: DnsLookupConfig): Promise<DnsLookupResult> {
  const attempts: DnsAttempt[] = [];
  for (const name of config.names) {
    const answer = await lookupName(resolver, name, config.family);
    if (answer.kind === "found") {
      const endpoints = [...answer.v4, ...answer.v6].map((host) => ({ host, port: config.port }));
      return { endpoints, ttlSeconds: answer.ttl, failedFamilies: answer.failed };
    }
    attempts.push(...answer.attempts);
    if (answer.kind === "failed") {
      throw new DnsResolutionError(config.host, attempts, servers(resolver));
    }
  }
  return emptyAnswer(resolver, config, attempts);
}

function emptyAnswer(resolver: dns.Resolver, config: DnsLookupConfig, attempts: DnsAttempt[]): DnsLookupResult {
  if (!config.acceptEmpty) {
    throw new DnsResolutionError(config.host, attempts, servers(resolver));
  }
  return { endpoints: [], ttlSeconds: undefined, failedFamilies: [] };
}

/**
 * SRV records: the first name of the search list that has any; the records
 * of the lowest priority; each target's addresses become endpoints with the
 * record's port and weight.
 */
async function lookupSrv(resolver: dns.Resolver, config: DnsLookupConfig): Promise<DnsLookupResult> {
  const attempts: DnsAttempt[] = [];
  let records: SrvRecord[] | undefined;
  for (const name of config.names) {
    try {
      // A target of "." means "no service here" (RFC 2782).
      const all = (await resolver.resolveSrv(name)).filter((r) => r.name !== "" && r.name !== ".");
      if (all.length > 0) {
        records = all;
        break;
      }
      attempts.push({ name, type: "SRV", kind: "nodata", code: undefined });
    } catch (error) {
      const code = errorCode(error);
      const kind = dnsErrorKind(code);
      attempts.push({ name, type: "SRV", kind, code });
      if (!isEmptyAnswer(kind)) {
        throw new DnsResolutionError(config.host, attempts, servers(resolver));
      }
    }
  }
  if (records === undefined) {
    return emptyAnswer(resolver, config, attempts);
  }
  const priority = Math.min(...records.map((r) => r.priority));
  const group = records.filter((r) => r.priority === priority);
  // RFC 2782: weight 0 is "very rarely" next to others, "equally" when all are 0.
  // A zero weight would divide by zero in the balancers, so "rarely" is 1% of the smallest other weight.
  const others = group.filter((r) => r.weight > 0).map((r) => r.weight);
  const zeroWeight = others.length === 0 ? 1 : Math.min(...others) / 100;
  const targets = [...new Set(group.map((r) => r.name.replace(/\.$/, "")))];
  const addresses = new Map<string, string[]>();
  let ttl: number | undefined;
  const failedFamilies = new Set<4 | 6>();
  await Promise.all(
    targets.map(async (target) => {
      if (isIP(target)) {
        addresses.set(target, [target]);
        return;
      }
      const answer = await lookupName(resolver, target, config.family);
      if (answer.kind === "found") {
        addresses.set(target, [...answer.v4, ...answer.v6]);
        ttl = minTtl(ttl, answer.ttl);
        for (const family of answer.failed) {
          failedFamilies.add(family);
        }
      } else {
        attempts.push(...answer.attempts);
      }
    }),
  );
  if (attempts.some((a) => !isEmptyAnswer(a.kind))) {
    throw new DnsResolutionError(config.host, attempts, servers(resolver));
  }
  const weights = new Map<string, Endpoint>();
  for (const record of group) {
    for (const host of addresses.get(record.name.replace(/\.$/, "")) ?? []) {
      const key = endpointKey({ host, port: record.port });
      const weight = (record.weight === 0 ? zeroWeight : record.weight) + (weights.get(key)?.weight ?? 0);
      weights.set(key, { host, port: record.port, weight });
    }
  }
  const endpoints = [...weights.values()];
  if (endpoints.length === 0) {
    return emptyAnswer(resolver, config, attempts);
  }
  return { endpoints, ttlSeconds: ttl, failedFamilies: [...failedFamilies] };
}

/**
 * One lookup of a target name. Throws DnsResolutionError when the name does
 * not resolve (or resolves to nothing and empty answers are not accepted).
 */
export function dnsLookup(resolver: dns.Resolver, config: DnsLookupConfig): Promise<DnsLookupResult> {
  return config.srv ? lookupSrv(resolver, config) : lookupAddresses(resolver, config);
}
