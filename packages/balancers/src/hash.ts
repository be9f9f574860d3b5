/**
 * A 32-bit hash of a string's UTF-16 code units: FNV-1a, then murmur3's
 * finalizer so that neighbouring inputs ("pod-1_0", "pod-1_1") land far
 * apart. Allocation-free; the same on every client, so all of them place a
 * key on the same endpoint. `seed` gives independent hashes of one string.
 */
export function hash32(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ Math.imul(seed, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A uniform random 32-bit hash, for a call that carries no hash key. */
export function randomHash(random: () => number): number {
  return Math.floor(random() * 0x1_0000_0000) >>> 0;
}
