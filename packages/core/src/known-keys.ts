/**
 * Throws a TypeError when `options` has a key that is not in `known`, naming
 * it and the nearest known key: a typo, or an option of a newer version,
 * should not be ignored without a word. `where` names the option object with
 * the API the user called ("createChannel", "proxy: routes[0]"); "" for none.
 */
export function assertKnownKeys(options: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const nearest = nearestKey(key, known);
    throw new TypeError(
      `${where ? `${where}: ` : ""}unknown key ${JSON.stringify(key)}${nearest ? ` (did you mean ${JSON.stringify(nearest)}?)` : ""}; ` +
        `accepted: ${known.join(", ")}`,
    );
  }
}

/** The known key closest to `key` by edit distance (case-insensitive), if any is reasonably close. */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  // More than half the letters wrong is no longer a typo of it.
  return best !== undefined && bestDistance <= Math.max(2, Math.ceil(key.length / 2)) ? best : undefined;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution);
    }
    previous = current;
  }
  return previous[b.length] as number;
}
