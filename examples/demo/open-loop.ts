import type { EchoResponse } from "../../gen/meshlite/echo/v1/echo_pb.js";

/** Options of runOpenLoop. */
export interface OpenLoopOptions {
  /** Calls per second, started on schedule whether or not earlier ones finished. */
  rate: number;
  /** How long to keep starting calls, in ms. */
  durationMs: number;
  /** Makes one call. */
  call(): Promise<EchoResponse>;
  /** Receives every finished call (also after the run stops starting new ones). */
  record: Recorder;
  /** Stops starting calls early. */
  signal?: AbortSignal;
  /**
   * Count latency from when the call was due, not from when it started, so
   * that a late timer or a busy event loop counts too. Default false.
   */
  latencyFromSchedule?: boolean;
}

/** Counts calls by the backend that answered and keeps their latencies. */
export interface Recorder {
  /** Calls per backend name (the `server` field of the response). */
  readonly byServer: Map<string, number>;
  /** Latency of every successful call, in ms. */
  readonly latencies: number[];
  errors: number;
  /** The first error seen, for the summary. */
  firstError?: string;
  total(): number;
}

export function createRecorder(): Recorder {
  return {
    byServer: new Map(),
    latencies: [],
    errors: 0,
    total() {
      let n = 0;
      for (const v of this.byServer.values()) n += v;
      return n;
    },
  };
}

/**
 * Starts calls at a steady rate (an open loop, like independent users) for a
 * while and waits for the last ones. A closed loop would measure how fast this
 * process turns calls around; an open loop at a modest rate measures the
 * backends.
 */
export async function runOpenLoop(options: OpenLoopOptions): Promise<void> {
  const { rate, durationMs, call, record } = options;
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  const intervalMs = 1000 / rate;
  let started = 0;
  function one() {
    // Call number `started` is due `started` intervals after the start.
    const t0 = options.latencyFromSchedule ? start + started * intervalMs : performance.now();
    const p = call().then(
      (response) => {
        record.latencies.push(performance.now() - t0);
        record.byServer.set(response.server, (record.byServer.get(response.server) ?? 0) + 1);
      },
      (e: unknown) => {
        record.errors++;
        record.firstError ??= e instanceof Error ? e.message : String(e);
      },
    );
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  }
  await new Promise<void>((resolve) => {
    // Timers are coarse and late on a busy box: each tick starts however many
    // calls the schedule says are due by now.
    const tick = setInterval(() => {
      const elapsed = performance.now() - start;
      const due = Math.min(Math.floor((elapsed * rate) / 1000), Math.floor((durationMs * rate) / 1000));
      while (started < due) {
        started++;
        one();
      }
      if (elapsed >= durationMs || options.signal?.aborted) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  await Promise.all(inFlight);
}
