import type { Balancer } from "@meshlite/core";
import { assertIntegerIn, createHashedBalancer, resolveHashOptions } from "./hashed-balancer.js";
import { buildMaglevTable } from "./maglev-table.js";

/** Options of createMaglevBalancer. */
export interface MaglevOptions {
  /**
   * The request header whose value is the call's hash key (gRPC's
   * `request_hash_header`): calls with the same value go to the same
   * endpoint. A call without it gets a random hash, as in gRPC. Default "x-hash-key".
   */
  hashHeader?: string;
  /**
   * Slots of the lookup table: a prime, well above the number of endpoints
   * (100x keeps shares within 1%). Default 65537, from 7 to 5000011.
   */
  tableSize?: number;
  /**
   * Bounded load: an endpoint takes no more than this factor times its fair
   * share of the calls in flight; a key whose endpoint is full goes on to the
   * next slots. 1.25 = 25% above the fair share. From 1 to 100. Default: off (pure affinity).
   */
  hashBalanceFactor?: number;
  /** Source of randomness for calls without the header. Default Math.random. */
  random?: () => number;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/**
 * Maglev hashing: a lookup table where every endpoint holds a share of the
 * slots in proportion to its weight, even to within a slot, placed by its
 * hash key (the pod name where the resolver knows it, else host:port). A
 * call goes to the endpoint of its key's slot: one array read per call, and
 * a more even spread than a ring, at the cost of a little more key movement
 * when the set changes. A down or ejected endpoint's keys go to the endpoint
 * of the next slot and come back with it.
 */
export function createMaglevBalancer(options: MaglevOptions = {}): Balancer {
  const api = "maglev";
  const { hashHeader, hashBalanceFactor } = resolveHashOptions(options, api);
  const tableSize = options.tableSize ?? 65537;
  assertIntegerIn(tableSize, 7, 5_000_011, `${api}: tableSize`);
  if (!isPrime(tableSize)) throw new RangeError(`${api}: tableSize must be a prime (such as 65537), got ${tableSize}`);
  return createHashedBalancer({
    name: api,
    hashHeader,
    hashBalanceFactor,
    random: options.random ?? Math.random,
    build: (identities, weights) => buildMaglevTable(identities, weights, tableSize),
  });
}
