/** A uniform random integer in [0, n). */
export function randomIndex(n: number, random: () => number): number {
  return Math.floor(random() * n);
}

/** Two distinct uniform random indexes in [0, n), n >= 2. */
export function twoDistinctIndexes(n: number, random: () => number): [number, number] {
  const a = randomIndex(n, random);
  let b = randomIndex(n - 1, random);
  if (b >= a) b++;
  return [a, b];
}
