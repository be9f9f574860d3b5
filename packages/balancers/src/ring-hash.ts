import type { Balancer } from "@meshlite/core";
import { assertIntegerIn, createHashedBalancer, resolveHashOptions } from "./hashed-balancer.js";
import { buildRing } from "./ring.js";

/** Options of createRingHashBalancer. */
export interface RingHashOptions {
  /**
   * The request header whose value is the call's hash key (gRPC's
   * `request_hash_header`): calls with the same value go to the same
   * endpoint. A call without it gets a random hash, as in gRPC. Default "x-hash-key".
   */
  hashHeader?: string;
  /** The ring has at least this many points (more with uneven weights, up to maxRingSize). Default 1024. */
  minRingSize?: number;
  /**
   * The ring has at most this many points (but every endpoint at least one);
   * raise it with hundreds of endpoints for an even spread. Default 4096, at most 8388608 (8 Mi).
   */
  maxRingSize?: number;
  /**
   * Bounded load: an endpoint takes no more than this factor times its fair
   * share of the calls in flight; a key whose endpoint is full goes on around
   * the ring. 1.25 = 25% above the fair share. From 1 to 100. Default: off (pure affinity).
   */
  hashBalanceFactor?: number;
  /** Source of randomness for calls without the header. Default Math.random. */
  random?: () => number;
}

/** The largest ring gRPC accepts (A42). */
const ringSizeCap = 8 * 1024 * 1024;

/**
 * Ring hash (consistent hashing): each endpoint gets points on a ring, about
 * in proportion to its weight, placed by its hash key (the pod name where the
 * resolver knows it, else host:port, so a StatefulSet keeps its placement
 * when pods get new addresses); a call goes to the first endpoint at or
 * after its key's hash. Adding or removing one of n endpoints moves about
 * 1/n of the keys; a down or ejected endpoint's keys go to the next endpoint
 * on the ring and come back with it. For caches and session affinity.
 */
export function createRingHashBalancer(options: RingHashOptions = {}): Balancer {
  const api = "ring-hash";
  const { hashHeader, hashBalanceFactor } = resolveHashOptions(options, api);
  const minRingSize = options.minRingSize ?? 1024;
  const maxRingSize = options.maxRingSize ?? Math.max(4096, minRingSize);
  assertIntegerIn(minRingSize, 1, ringSizeCap, `${api}: minRingSize`);
  assertIntegerIn(maxRingSize, 1, ringSizeCap, `${api}: maxRingSize`);
  if (minRingSize > maxRingSize) {
    throw new RangeError(`${api}: minRingSize (${minRingSize}) must not exceed maxRingSize (${maxRingSize})`);
  }
  return createHashedBalancer({
    name: api,
    hashHeader,
    hashBalanceFactor,
    random: options.random ?? Math.random,
    build: (identities, weights) => buildRing(identities, weights, minRingSize, maxRingSize),
  });
}
