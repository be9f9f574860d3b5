// Below what nghttp2 servers allow (1000 in a burst, 33 a second), with room for the peer's own.
const burst = 500;
const perSecond = 20;
/** Cancelled streams a connection keeps open, waiting for budget, before it resets anyway. */
const maxDeferred = 10_000;

/**
 * One connection's budget of RST_STREAM frames, a token bucket (500 in a
 * burst, 20 a second after): servers on nghttp2 (node:http2 among them)
 * answer more than 1000 RST_STREAMs in a burst, or 33 a second after, with
 * GOAWAY (their defence against HTTP/2 rapid reset, CVE-2023-44487), and every
 * call on the connection fails. A stream cancelled past the budget is ended
 * instead (its request ended, its response read and dropped) and deferred:
 * it is reset later, as budget comes back, if it is still open then.
 */
export interface ResetBudget<T> {
  /** Takes one reset: true to send RST_STREAM now, false when the budget is spent (end and defer the stream). */
  take(): boolean;
  /**
   * Resets `stream` later, as budget comes back, if it is still open then.
   * False (and nothing done) when too many streams wait already: reset it now.
   */
  defer(stream: T): boolean;
}

/** What a ResetBudget does with the streams it deferred. */
export interface ResetBudgetActions<T> {
  /** Whether the stream is still open (else it is forgotten). */
  isOpen(stream: T): boolean;
  /** Sends its RST_STREAM now (CANCEL). */
  reset(stream: T): void;
}

/** A reset budget for one connection. Its timer runs only while streams are deferred, and never holds the process open. */
export function createResetBudget<T>(actions: ResetBudgetActions<T>): ResetBudget<T> {
  let tokens = burst;
  let refilledAt = performance.now();
  /** Cancelled streams that were ended instead of reset, oldest first. */
  const deferred: T[] = [];
  let timer: NodeJS.Timeout | undefined;

  function take(): boolean {
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - refilledAt) * perSecond) / 1000);
    refilledAt = now;
    if (tokens < 1) return false;
    tokens--;
    return true;
  }

  /** Resets deferred streams still open as budget comes back; stops once none is left. */
  function resetDeferred() {
    while (deferred.length > 0) {
      const stream = deferred[0] as T;
      if (!actions.isOpen(stream)) {
        deferred.shift();
        continue;
      }
      if (!take()) return;
      deferred.shift();
      actions.reset(stream);
    }
    clearInterval(timer);
    timer = undefined;
  }

  return {
    take,
    defer(stream) {
      if (deferred.length >= maxDeferred) return false;
      deferred.push(stream);
      if (timer === undefined) {
        timer = setInterval(resetDeferred, 1000 / perSecond);
        // Pending resets never hold the process open: the streams are the caller's.
        timer.unref();
      }
      return true;
    },
  };
}
