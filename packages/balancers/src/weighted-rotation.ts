import type { PickCandidate } from "@meshlite/core";

/**
 * A weighted rotation over a fixed list (earliest deadline first, as Envoy's
 * and gRPC's weighted round robin): every candidate has a next deadline
 * that advances by 1 / weight each time it is picked, and the pick is the
 * earliest one. Shares follow the weights exactly and evenly spread, in
 * O(log n) a pick with nothing allocated (typed arrays and a binary heap,
 * built once per list).
 */
export interface WeightedRotation {
  next(): PickCandidate;
  /** The candidate's next deadline, to carry it over to the rotation of a new list. */
  deadlineOf(candidate: PickCandidate): number | undefined;
  /** The deadline of the last pick: the rotation's clock. */
  readonly time: number;
}

/** The smallest weight counted, so that a weight of 0 (or less) cannot stall the clock. */
const minWeight = 1e-6;

/**
 * A rotation over `list`, or undefined when all weights are equal (a plain
 * rotation does then). Candidates in `previous` keep their place: a list
 * rebuilt when weights step (slow start) or an endpoint joins does not
 * restart the rotation; new ones start at a random point of their first step.
 */
export function createWeightedRotation(
  list: readonly PickCandidate[],
  previous: WeightedRotation | undefined,
  random: () => number,
): WeightedRotation | undefined {
  const n = list.length;
  const first = (list[0] as PickCandidate).weight;
  if (list.every((c) => c.weight === first)) return undefined;
  const step = new Float64Array(n);
  const deadline = new Float64Array(n);
  const heap = new Int32Array(n);
  let time = previous?.time ?? 0;
  for (let i = 0; i < n; i++) {
    const candidate = list[i] as PickCandidate;
    step[i] = 1 / Math.max(candidate.weight, minWeight);
    const carried = previous?.deadlineOf(candidate);
    // A weight that rose does not wait out a deadline set under the old one.
    deadline[i] =
      carried !== undefined ? Math.min(carried, time + (step[i] as number)) : time + random() * (step[i] as number);
    heap[i] = i;
  }
  const before = (i: number, j: number) =>
    (deadline[i] as number) < (deadline[j] as number) || (deadline[i] === deadline[j] && i < j);
  function siftDown(at: number) {
    let k = at;
    for (;;) {
      const l = 2 * k + 1;
      if (l >= n) return;
      const r = l + 1;
      const child = r < n && before(heap[r] as number, heap[l] as number) ? r : l;
      if (!before(heap[child] as number, heap[k] as number)) return;
      const t = heap[k] as number;
      heap[k] = heap[child] as number;
      heap[child] = t;
      k = child;
    }
  }
  for (let k = (n >> 1) - 1; k >= 0; k--) siftDown(k);
  let index: Map<PickCandidate, number> | undefined;
  return {
    next() {
      const i = heap[0] as number;
      time = deadline[i] as number;
      deadline[i] = time + (step[i] as number);
      siftDown(0);
      return list[i] as PickCandidate;
    },
    deadlineOf(candidate) {
      index ??= new Map(list.map((c, i) => [c, i]));
      const i = index.get(candidate);
      return i === undefined ? undefined : deadline[i];
    },
    get time() {
      return time;
    },
  };
}
