import type { Balancer, PickCandidate } from "@meshlite/core";
import { hash32, randomHash } from "./hash.js";
import type { BuildHashTable, HashTable } from "./hash-table.js";

/** What ring-hash and Maglev share: where the hash comes from, bounded load. */
export interface HashedBalancerSettings {
  readonly name: string;
  /** Lowercase header name. */
  readonly hashHeader: string;
  /** Bounded load factor; undefined for none. */
  readonly hashBalanceFactor: number | undefined;
  readonly random: () => number;
  readonly build: BuildHashTable;
}

/**
 * A balancer that hashes the call's key onto a table of the candidates.
 *
 * The table is built when the candidates change (a new array from the pool),
 * never per call. A candidate set that is a subset of the one the table was
 * built for (an endpoint down, ejected or draining; a retry that avoids the
 * endpoint that failed) keeps the table: the missing endpoints' positions are
 * skipped, so their keys go to the next position's endpoint and every other
 * key stays where it was, and they come back when the endpoint does. A set
 * with an endpoint the table lacks, a changed weight, or fewer than half the
 * endpoints builds a new table.
 *
 * With `hashBalanceFactor` c, an endpoint takes a call only while its calls
 * in flight + 1 are at most ceil(c x (all calls in flight + 1) x its weight /
 * the total weight) (consistent hashing with bounded loads, Mirrokni et al.);
 * otherwise the walk goes on to the next position. An idle endpoint always
 * qualifies, so the sum is only read when the key's endpoint is busy. Over
 * more than 16 endpoints the sum is read again every n/16 picks and counts
 * the calls picked since as in flight (an upper bound, never below the true
 * sum), which costs an endpoint at most one call above its bound.
 */
export function createHashedBalancer(settings: HashedBalancerSettings): Balancer {
  const { hashHeader, hashBalanceFactor: factor, random, build } = settings;
  let table: HashTable | undefined;
  /** The candidates the members stand for now, by member (undefined: not a candidate now). */
  let byMember: Array<PickCandidate | undefined> = [];
  let present = new Uint8Array(0);
  let weights: number[] = [];
  let memberOf = new Map<string, number>();
  let totalWeight = 0;
  let current: readonly PickCandidate[] | undefined;
  let picks = 0;
  let summedAt = Number.NEGATIVE_INFINITY;
  let summed = 0;
  let sumEvery = 1;

  /**
   * The weight a candidate is placed and bounded by: the resolver's, not the
   * effective one. Affinity is the point of hashing, so a weight that policies
   * ramp (slow start) would move keys every step; Envoy does not ramp hash
   * balancers either.
   */
  const weightOf = (c: PickCandidate) => c.endpoint.weight ?? 1;

  /** The identity a candidate is placed by: its hash key; a second one with the same key is told apart by its address. */
  const secondIdentity = (c: PickCandidate) => `${c.hashKey}\u0000${c.key}`;

  function rebuild(candidates: readonly PickCandidate[]) {
    memberOf = new Map();
    const identities: string[] = [];
    weights = [];
    for (const c of candidates) {
      let identity = c.hashKey;
      if (memberOf.has(identity)) identity = secondIdentity(c);
      if (memberOf.has(identity)) continue; // the same endpoint twice: once is enough
      memberOf.set(identity, identities.length);
      identities.push(identity);
      weights.push(weightOf(c));
    }
    table = build(identities, weights);
    byMember = [];
    present = new Uint8Array(identities.length);
    reuse(candidates);
  }

  /** Points the table's members at `candidates`; false when they are not a subset of the members. */
  function reuse(candidates: readonly PickCandidate[]): boolean {
    present.fill(0);
    let total = 0;
    for (const c of candidates) {
      let m = memberOf.get(c.hashKey);
      if (m !== undefined && present[m] === 1) m = memberOf.get(secondIdentity(c));
      if (m === undefined) return false;
      if (present[m] === 1) continue;
      if (weights[m] !== weightOf(c)) return false;
      present[m] = 1;
      byMember[m] = c;
      total += weightOf(c);
    }
    for (let m = 0; m < present.length; m++) if (present[m] === 0) byMember[m] = undefined;
    totalWeight = total;
    return true;
  }

  function sync(candidates: readonly PickCandidate[]) {
    if (candidates === current) return;
    current = candidates;
    summedAt = Number.NEGATIVE_INFINITY;
    sumEvery = Math.max(1, Math.floor(candidates.length / 16));
    if (table !== undefined && candidates.length * 2 >= present.length && reuse(candidates)) return;
    rebuild(candidates);
  }

  /** Calls in flight over all candidates (see above: refreshed every n/16 picks). */
  function inFlightAll(candidates: readonly PickCandidate[]): number {
    if (picks - summedAt >= sumEvery) {
      summed = 0;
      for (const c of candidates) summed += c.load.inFlight;
      summedAt = picks;
    }
    return summed + (picks - summedAt);
  }

  function underBound(c: PickCandidate, inFlightAll: number): boolean {
    return c.load.inFlight + 1 <= Math.ceil(((factor as number) * (inFlightAll + 1) * weightOf(c)) / totalWeight);
  }

  return {
    name: settings.name,
    pick(candidates, call) {
      if (candidates.length === 1) return candidates[0];
      sync(candidates);
      const t = table as HashTable;
      const value = call.header(hashHeader);
      let position = t.find(value === undefined ? randomHash(random) : hash32(value));
      let first: PickCandidate | undefined;
      let all = -1;
      picks++;
      for (let step = 0; step < t.size; step++) {
        const m = t.member(position);
        position = position + 1 === t.size ? 0 : position + 1;
        if (present[m] !== 1) continue;
        const c = byMember[m] as PickCandidate;
        if (factor === undefined || c.load.inFlight === 0) return c;
        first ??= c;
        if (all < 0) all = inFlightAll(candidates);
        if (underBound(c, all)) return c;
      }
      // Every position was walked (a candidate the table has no position for): the key's own endpoint, or any.
      return first ?? candidates[0];
    },
  };
}

/** Header names as HTTP allows them (tokens), matched lowercase. */
const headerName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Checks `hashHeader` and `hashBalanceFactor`, returning them normalized; `api` starts the messages. */
export function resolveHashOptions(
  options: { hashHeader?: string; hashBalanceFactor?: number },
  api: string,
): { hashHeader: string; hashBalanceFactor: number | undefined } {
  const hashHeader = options.hashHeader ?? defaultHashHeader;
  if (typeof hashHeader !== "string" || !headerName.test(hashHeader)) {
    throw new TypeError(
      `${api}: hashHeader must be a request header name (letters, digits, - and the other HTTP token characters), got ${JSON.stringify(hashHeader)}`,
    );
  }
  const factor = options.hashBalanceFactor;
  if (factor !== undefined && !(typeof factor === "number" && factor >= 1 && factor <= 100)) {
    throw new RangeError(
      `${api}: hashBalanceFactor must be a number from 1 to 100 (a ratio: 1.25 lets an endpoint take 25% above its fair share; Envoy's percent 125 is 1.25 here), got ${String(factor)}`,
    );
  }
  return { hashHeader: hashHeader.toLowerCase(), hashBalanceFactor: factor };
}

/** The header ring-hash and Maglev hash when options name none. */
export const defaultHashHeader = "x-hash-key";

/** Checks that `value` is an integer in [min, max]. */
export function assertIntegerIn(value: number, min: number, max: number, what: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
}
