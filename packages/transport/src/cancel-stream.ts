import * as http2 from "node:http2";

interface Budget {
  tokens: number;
  refilledAt: number;
  /** Cancelled streams that were ended instead of reset, oldest first. */
  deferred: http2.ClientHttp2Stream[];
  timer: NodeJS.Timeout | undefined;
}

const CANCEL = http2.constants.NGHTTP2_CANCEL;
const budgets = new WeakMap<http2.Http2Session, Budget>();
// Below what nghttp2 servers allow (1000 in a burst, 33 a second), with room for the peer's own.
const burst = 500;
const perSecond = 20;
/** Cancelled streams a connection keeps open, waiting for budget, before it resets anyway. */
const maxDeferred = 10_000;

/**
 * Cancels a client stream without getting its connection killed. Servers on
 * nghttp2 (node:http2 among them) rate-limit the RST_STREAM frames they
 * receive, against HTTP/2 rapid reset (CVE-2023-44487): past 1000 in a burst,
 * or 33 a second after, they answer GOAWAY INTERNAL_ERROR and every call on
 * the connection fails. A proxy forwarding a client's cancellations, or a
 * channel cancelling many calls, reaches that easily. So a stream is reset
 * while the connection's budget lasts; past it, the stream's request is ended
 * and its response read and dropped (a unary call then ends by itself), and
 * the stream is reset later, as budget comes back, if it is still open then.
 */
export function cancelStream(stream: http2.ClientHttp2Stream, code: number = CANCEL): void {
  if (stream.closed || stream.destroyed) return;
  // Node keeps a stream with unread data open until it is read: let it go.
  stream.resume();
  const session = stream.session;
  const budget = session === undefined || session.destroyed ? undefined : budgetOf(session);
  if (budget === undefined || take(budget) || budget.deferred.length >= maxDeferred) {
    stream.close(code);
    return;
  }
  stream.on("error", noop);
  if (!stream.writableEnded) stream.end();
  budget.deferred.push(stream);
  budget.timer ??= scheduleDeferred(budget);
}

function budgetOf(session: http2.Http2Session): Budget {
  let budget = budgets.get(session);
  if (budget === undefined) {
    budget = { tokens: burst, refilledAt: performance.now(), deferred: [], timer: undefined };
    budgets.set(session, budget);
  }
  return budget;
}

function take(budget: Budget): boolean {
  const now = performance.now();
  budget.tokens = Math.min(burst, budget.tokens + ((now - budget.refilledAt) * perSecond) / 1000);
  budget.refilledAt = now;
  if (budget.tokens < 1) return false;
  budget.tokens--;
  return true;
}

/** Resets deferred streams still open as budget comes back; stops once none is left. */
function scheduleDeferred(budget: Budget): NodeJS.Timeout {
  const timer = setInterval(() => {
    while (budget.deferred.length > 0) {
      const stream = budget.deferred[0] as http2.ClientHttp2Stream;
      if (stream.closed || stream.destroyed) {
        budget.deferred.shift();
        continue;
      }
      if (!take(budget)) return;
      budget.deferred.shift();
      stream.close(CANCEL);
    }
    clearInterval(timer);
    budget.timer = undefined;
  }, 1000 / perSecond);
  // Pending resets never hold the process open: the streams are the caller's.
  timer.unref();
  return timer;
}

function noop() {}
