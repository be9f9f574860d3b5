import { hash32 } from "@meshlite/balancers";

/** One server of a client's subset: its index on the server ring and its share of the client's calls. */
export interface ApertureShare {
  index: number;
  /** Share of the client's calls, 0 < share <= 1; the shares of one client add up to 1. */
  share: number;
}

/**
 * Deterministic aperture over two rings of circumference 1: server j holds
 * the arc [j/M, (j+1)/M), the client at `position` (its rank among `count`
 * clients, plus the ring's phase: see ringPhase; may be fractional) starts
 * its aperture at position/count, and the aperture is `size` servers wide
 * (at least 1/count, so that the clients cover every server).
 *
 * Within the aperture a client spreads its calls by a trapezoid density:
 * the convolution of a box k/count wide (k = whole client widths that fit)
 * with a box of the rest. Shifted copies of a box k/count wide, one per
 * client at rank/count, cover every point of the ring exactly k times, and
 * convolving that with any density keeps it flat: so every server receives
 * exactly the same share of all calls, whatever `size`, M and `count` are,
 * and no client widens its aperture to whole client units (Finagle does).
 * The servers at the aperture's ends, and on its ramps, take a smaller
 * share; a client touches at most ceil(width x M) + 1 <= size + 1 servers.
 */
export function apertureShares(servers: number, position: number, count: number, size: number): ApertureShare[] {
  if (servers <= 0) return [];
  const width = Math.max(Math.min(size, servers) / servers, 1 / count);
  if (width >= 1 - 1e-12) return Array.from({ length: servers }, (_, index) => ({ index, share: 1 / servers }));
  const start = position / count;
  const whole = Math.floor(width * count + 1e-9) / count;
  const rest = Math.max(width - whole, 0);
  const short = Math.min(whole, rest);
  const long = Math.max(whole, rest);
  // The cumulative share of the aperture's first t of arc.
  const cumulative = (t: number): number => {
    if (t <= 0) return 0;
    if (t >= width) return 1;
    if (short < 1e-12) return t / long;
    if (t < short) return (t * t) / (2 * short * long);
    if (t < long) return (t - short / 2) / long;
    const left = width - t;
    return 1 - (left * left) / (2 * short * long);
  };
  const shares = new Map<number, number>();
  const first = Math.floor(start * servers);
  const last = Math.ceil((start + width) * servers - 1e-9);
  for (let j = first; j < last; j++) {
    const share = cumulative((j + 1) / servers - start) - cumulative(j / servers - start);
    if (share <= 1e-9) continue;
    const index = ((j % servers) + servers) % servers;
    shares.set(index, (shares.get(index) ?? 0) + share);
  }
  return [...shares].map(([index, share]) => ({ index, share }));
}

/**
 * A seeded rendezvous-hash subset (highest random weight, as gRFC A68's
 * random subsetting): the `size` keys that score highest for this seed.
 * Stable per seed, even across clients in expectation, and a change of the
 * set moves only the members it must.
 */
export function rendezvousSubset(keys: readonly string[], seed: string, size: number): number[] {
  const seedHash = hash32(seed);
  return keys
    .map((key, index) => ({ index, score: hash32(key, seedHash) }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, size)
    .map((s) => s.index);
}

/**
 * The ring order of a set of keys (server addresses, or the client's peers):
 * by hash, so that every client sees the same order and a key that joins
 * lands at a random place (shifting the others by little) rather than at
 * the end (shifting every position).
 */
export function ringOrder(keys: readonly string[]): number[] {
  const scored = keys.map((key, index) => ({ index, key, h: hash32(key) }));
  scored.sort((a, b) => a.h - b.h || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return scored.map((s) => s.index);
}

/**
 * The phase of the client ring, in client units: how far the clients' even
 * slots (rank/count) are turned so that they sit, on average, where the
 * clients' own hashes put them. Every client computes the same from the same
 * peers. Without it, rank 0 sits at 0 whatever the hashes say, and a client
 * that joins near that anchor shifts every slot after it by up to a whole
 * client's arc; anchored to the hashes, the slots move by about half a
 * client's arc at most (30 -> 31 clients over 210 servers: 49-55
 * connections opened by the old clients, against 66-120 anchored at 0).
 */
export function ringPhase(keys: readonly string[]): number {
  let phase = 0;
  ringOrder(keys).forEach((index, rank) => {
    phase += hash32(keys[index] as string) / 2 ** 32 - rank / keys.length;
  });
  return phase;
}
