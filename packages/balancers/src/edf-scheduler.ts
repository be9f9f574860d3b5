/**
 * Earliest deadline first over weights (gRFC A58's scheduler): each entry's
 * next deadline is its last one + 1 / weight, and the entry with the earliest
 * deadline goes next, so over any stretch of picks each gets a share in
 * proportion to its weight, interleaved. A binary heap in typed arrays:
 * O(log n) and allocation-free per pick.
 */
export interface EdfScheduler {
  /** Starts over with these weights (positive), each entry at a random point within its first period. */
  reset(weights: Float64Array, count: number, random: () => number): void;
  /** The next entry's index. */
  next(): number;
}

export function createEdfScheduler(): EdfScheduler {
  let deadline = new Float64Array(0);
  let period = new Float64Array(0);
  let heap = new Int32Array(0);
  let size = 0;

  const earlier = (a: number, b: number) =>
    (deadline[a] as number) < (deadline[b] as number) || (deadline[a] === deadline[b] && a < b);

  function siftDown(from: number) {
    let i = from;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) return;
      const right = left + 1;
      let child = left;
      if (right < size && earlier(heap[right] as number, heap[left] as number)) child = right;
      if (!earlier(heap[child] as number, heap[i] as number)) return;
      const t = heap[i] as number;
      heap[i] = heap[child] as number;
      heap[child] = t;
      i = child;
    }
  }

  return {
    reset(weights, count, random) {
      if (heap.length < count) {
        deadline = new Float64Array(count);
        period = new Float64Array(count);
        heap = new Int32Array(count);
      }
      size = count;
      for (let i = 0; i < count; i++) {
        period[i] = 1 / (weights[i] as number);
        deadline[i] = random() * (period[i] as number);
        heap[i] = i;
      }
      for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(i);
    },
    next() {
      const top = heap[0] as number;
      deadline[top] = (deadline[top] as number) + (period[top] as number);
      siftDown(0);
      return top;
    },
  };
}
