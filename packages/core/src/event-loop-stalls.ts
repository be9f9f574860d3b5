/** What the event-loop stall monitor has seen, for snapshots. */
export interface EventLoopStallStats {
  /** Stalls seen since the monitor started. */
  stalls: number;
  /** The longest stall in ms (0 when none). */
  maxStallMs: number;
  /** How long the last stall took, in ms (0 when none). */
  lastStallMs: number;
  /** When the last stall ended (ms, performance.now()); undefined when none. */
  lastStallAt?: number;
}

/**
 * The caller's own event loop, watched for stalls: a timer ticks every
 * `tickMs` and a tick that comes `stallMs` or more late means the loop was
 * blocked (a long synchronous task, a GC pause, a starved CPU) for that long.
 *
 * Why: Node runs expired timers before it reads waiting I/O, so after a stall
 * a keepalive or connect timeout fires while the answer already sits unread in
 * the socket, and a call that spanned the stall measures the caller's pause,
 * not the pod. Verdicts and latency samples subtract the stalled time.
 */
export interface EventLoopStalls {
  /**
   * How many ms of [`since`, `now`] the loop spent stalled, including a stall
   * going on right now (the tick is overdue).
   */
  stalledMs(since: number, now?: number): number;
  /**
   * Whether the loop was stalled for 50 ms or more of [`since`, `now`]: what
   * was measured over that window measured the caller. (A fast call that
   * ends while the loop catches up after a stall spanned none of it.)
   */
  spannedStall(since: number, now?: number): boolean;
  stats(): EventLoopStallStats;
  /** Gives this holder's reference back; the monitor stops with the last one. */
  release(): void;
}

/** A tick this often (ms). */
const tickMs = 20;
/** A tick at least this late (ms) is a stall; less is scheduling noise. */
const stallMs = 50;
/** The stalls remembered, enough for the longest calls and verdicts that ask. */
const remembered = 64;

let holders = 0;
let timer: NodeJS.Timeout | undefined;
let lastTick = 0;
// A ring of recent stalls: when each ended and how long it took.
const ends = new Float64Array(remembered);
const durations = new Float64Array(remembered);
let next = 0;
const totals: EventLoopStallStats = { stalls: 0, maxStallMs: 0, lastStallMs: 0 };

function tick() {
  const now = performance.now();
  const late = now - lastTick - tickMs;
  lastTick = now;
  if (late >= stallMs) {
    ends[next] = now;
    durations[next] = late;
    next = (next + 1) % remembered;
    totals.stalls++;
    totals.maxStallMs = Math.max(totals.maxStallMs, late);
    totals.lastStallMs = late;
    totals.lastStallAt = now;
  }
}

function overlap(from: number, to: number, since: number, now: number): number {
  return Math.max(0, Math.min(to, now) - Math.max(from, since));
}

const handle: Omit<EventLoopStalls, "release"> = {
  stalledMs(since, now = performance.now()) {
    let total = 0;
    // The common case, on every call's end: no stall since the call started.
    if ((totals.lastStallAt ?? Number.NEGATIVE_INFINITY) <= since) {
      const due = lastTick + tickMs;
      return holders > 0 && now - due >= stallMs ? overlap(due, now, since, now) : 0;
    }
    for (let i = 0; i < remembered; i++) {
      const end = ends[i] as number;
      if (end > since) total += overlap(end - (durations[i] as number), end, since, now);
    }
    // The loop is stalled right now: the tick is overdue.
    const due = lastTick + tickMs;
    if (holders > 0 && now - due >= stallMs) total += overlap(due, now, since, now);
    return total;
  },
  spannedStall(since, now = performance.now()) {
    return handle.stalledMs(since, now) >= stallMs;
  },
  stats: () => ({ ...totals }),
};

/**
 * Takes a reference to the process-wide stall monitor (started on the first
 * one). Release it when done: the timer is unref'd, and stops with the last
 * reference.
 */
export function acquireEventLoopStalls(): EventLoopStalls {
  if (holders++ === 0) {
    lastTick = performance.now();
    timer = setInterval(tick, tickMs);
    timer.unref();
  }
  let released = false;
  return {
    ...handle,
    release() {
      if (released) return;
      released = true;
      if (--holders === 0 && timer) {
        clearInterval(timer);
        timer = undefined;
      }
    },
  };
}
