// median lives in stats.ts; re-exported for the benches that take it from here.
export { median } from "./stats.js";

/** The result of one slice: how many operations finished and what they cost. */
export interface SliceResult {
  /** Operations per second over the slice. */
  perSecond: number;
  /** CPU time of this process per operation, in microseconds (user + system). */
  cpuMicrosPerOp: number;
}

/** One side of a comparison: runs for about `ms` and reports. */
export type Slice = (ms: number) => Promise<SliceResult>;

/** Options of interleave. */
export interface InterleaveOptions {
  /** Number of A/B pairs. */
  pairs: number;
  /** Length of every slice, in ms. */
  sliceMs: number;
  /** Told after every pair, for progress output. */
  onPair?(index: number, a: SliceResult, b: SliceResult): void;
}

/**
 * Runs A and B in alternating short slices (A B, B A, A B, ...): the machine's
 * speed drifts over seconds, and slices close in time see the same machine.
 * Returns the results of each pair.
 */
export async function interleave(
  a: Slice,
  b: Slice,
  options: InterleaveOptions,
): Promise<Array<{ a: SliceResult; b: SliceResult }>> {
  const pairs: Array<{ a: SliceResult; b: SliceResult }> = [];
  for (let i = 0; i < options.pairs; i++) {
    // Alternate the order so that neither side always runs second (warmer, or after a GC).
    let ra: SliceResult;
    let rb: SliceResult;
    if (i % 2 === 0) {
      ra = await a(options.sliceMs);
      rb = await b(options.sliceMs);
    } else {
      rb = await b(options.sliceMs);
      ra = await a(options.sliceMs);
    }
    pairs.push({ a: ra, b: rb });
    options.onPair?.(i, ra, rb);
  }
  return pairs;
}

/**
 * Runs `concurrency` loops that each call `op` back to back for `ms`, and
 * measures throughput and this process's CPU time per call.
 */
export async function closedLoop(op: () => Promise<unknown>, concurrency: number, ms: number): Promise<SliceResult> {
  let done = 0;
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await op();
        done++;
      }
    }),
  );
  const elapsed = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: (done * 1000) / elapsed, cpuMicrosPerOp: (cpu.user + cpu.system) / Math.max(1, done) };
}
