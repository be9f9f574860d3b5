import { hash32 } from "./hash.js";
import type { HashTable } from "./hash-table.js";

/**
 * A Maglev lookup table (Eisenbud et al., NSDI 2016) of `size` slots, a
 * prime: every member walks its own permutation of the slots (offset and
 * skip from two hashes of its identity) and takes the next free slot of it,
 * in turns, until the table is full. A member takes a turn for each whole
 * unit its weight / the largest weight adds up to (Envoy's weighted
 * Maglev), so slot counts follow the weights. A hash lands on slot
 * `hash % size`; shares are even to within a slot or two, and a member
 * joining or leaving moves little more than its own share.
 */
export function buildMaglevTable(identities: readonly string[], weights: readonly number[], size: number): HashTable {
  const n = identities.length;
  const table = new Int32Array(size).fill(-1);
  const position = new Float64Array(n);
  const skip = new Float64Array(n);
  const credit = new Float64Array(n);
  let heaviest = 0;
  for (let i = 0; i < n; i++) {
    const identity = identities[i] as string;
    position[i] = hash32(identity, 1) % size;
    skip[i] = (hash32(identity, 2) % (size - 1)) + 1;
    heaviest = Math.max(heaviest, weights[i] as number);
  }
  let filled = 0;
  while (filled < size) {
    for (let i = 0; i < n && filled < size; i++) {
      credit[i] = (credit[i] as number) + (weights[i] as number) / heaviest;
      while ((credit[i] as number) >= 1 && filled < size) {
        credit[i] = (credit[i] as number) - 1;
        let slot = position[i] as number;
        while ((table[slot] as number) >= 0) slot = (slot + (skip[i] as number)) % size;
        table[slot] = i;
        position[i] = (slot + (skip[i] as number)) % size;
        filled++;
      }
    }
  }
  return {
    size,
    find: (hash) => hash % size,
    member: (slot) => table[slot] as number,
  };
}
