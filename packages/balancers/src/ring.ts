import { hash32 } from "./hash.js";
import type { HashTable } from "./hash-table.js";

/**
 * A consistent-hash ring (Karger et al.; as Envoy's and gRPC's ring_hash):
 * each member gets points on a 32-bit circle in proportion to its weight, in
 * a ring of at least `minSize` and at most `maxSize` points (at least one
 * each), at `hash32("<identity>_<n>")`. A hash belongs to the first
 * point at or after it, wrapping around. Adding a member takes over only the
 * arcs before its own points (about 1/n of the keys).
 */
export function buildRing(
  identities: readonly string[],
  weights: readonly number[],
  minSize: number,
  maxSize: number,
): HashTable {
  let total = 0;
  let smallest = Number.POSITIVE_INFINITY;
  for (const w of weights) {
    total += w;
    if (w < smallest) smallest = w;
  }
  // Points per unit of weight (the lightest member's): the smallest power of
  // two that makes a ring of minSize, so that it stays the same while the
  // set grows or shrinks between powers of two, and the members keep their
  // points (and their keys). Within maxSize.
  const units = total / smallest;
  let perUnit = 1;
  while (perUnit * units < minSize) perUnit *= 2;
  if (perUnit * units > maxSize) perUnit = maxSize / units;
  const points: Array<[number, number]> = [];
  identities.forEach((identity, member) => {
    const count = Math.max(1, Math.round((perUnit * (weights[member] as number)) / smallest));
    for (let n = 0; n < count; n++) points.push([hash32(`${identity}_${n}`), member]);
  });
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const hashes = Uint32Array.from(points, (p) => p[0]);
  const members = Int32Array.from(points, (p) => p[1]);
  const size = hashes.length;
  return {
    size,
    find(hash) {
      // The first point at or after the hash, else the first one (the ring wraps).
      let low = 0;
      let high = size;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if ((hashes[mid] as number) < hash) low = mid + 1;
        else high = mid;
      }
      return low === size ? 0 : low;
    },
    member: (position) => members[position] as number,
  };
}
