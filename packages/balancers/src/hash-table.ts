/**
 * Where hashes land, built once per endpoint set: `members` are numbered in
 * the order they were given (0..n-1). A pick finds a hash's position and
 * walks to the next positions while the member there cannot take the call.
 */
export interface HashTable {
  /** Number of positions. */
  readonly size: number;
  /** The position a hash lands on, in [0, size). */
  find(hash: number): number;
  /** The member at a position; the next position is `(position + 1) % size`. */
  member(position: number): number;
}

/** Builds the table of a set: a stable identity (hash key) and a positive weight per member. */
export type BuildHashTable = (identities: readonly string[], weights: readonly number[]) => HashTable;
