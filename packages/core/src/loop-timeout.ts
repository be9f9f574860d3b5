import type { EventLoopStalls } from "./event-loop-stalls.js";

/** A pending loop timeout; `clear()` cancels it. */
export interface LoopTimeout {
  clear(): void;
}

/**
 * Calls `onTimeout` once `ms` have passed for the caller's event loop: time
 * the loop was stalled does not count, and the verdict waits until the I/O
 * that arrived meanwhile was read (a timer that fires after a stall runs
 * before the poll phase, while the answer it waits for may sit unread in the
 * socket). For timeouts that condemn a connection: keepalive, connect.
 */
export function setLoopTimeout(onTimeout: () => void, ms: number, stalls: EventLoopStalls): LoopTimeout {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  let cleared = false;
  function arm(delay: number) {
    timer = setTimeout(afterPoll, delay);
    timer.unref();
  }
  function afterPoll() {
    timer = undefined;
    immediate = setImmediate(verdict);
    immediate.unref();
  }
  function verdict() {
    immediate = undefined;
    if (cleared) return;
    const now = performance.now();
    const elapsed = now - start - stalls.stalledMs(start, now);
    if (elapsed >= ms) onTimeout();
    else arm(ms - elapsed);
  }
  arm(ms);
  return {
    clear() {
      cleared = true;
      if (timer) clearTimeout(timer);
      if (immediate) clearImmediate(immediate);
    },
  };
}
