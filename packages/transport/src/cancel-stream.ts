import * as http2 from "node:http2";
import { createResetBudget, type ResetBudget } from "./reset-budget.js";

const CANCEL = http2.constants.NGHTTP2_CANCEL;
const budgets = new WeakMap<http2.Http2Session, ResetBudget<http2.ClientHttp2Stream>>();
const actions = {
  isOpen: (stream: http2.ClientHttp2Stream) => !stream.closed && !stream.destroyed,
  reset: (stream: http2.ClientHttp2Stream) => stream.close(CANCEL),
};

/**
 * Cancels a client stream without getting its connection killed. Servers on
 * nghttp2 (node:http2 among them) rate-limit the RST_STREAM frames they
 * receive, against HTTP/2 rapid reset (CVE-2023-44487): past 1000 in a burst,
 * or 33 a second after, they answer GOAWAY INTERNAL_ERROR and every call on
 * the connection fails. A proxy forwarding a client's cancellations, or a
 * channel cancelling many calls, reaches that easily. So a stream is reset
 * while the connection's budget lasts (reset-budget.ts); past it, the
 * stream's request is ended and its response read and dropped (a unary call
 * then ends by itself), and the stream is reset later, as budget comes back,
 * if it is still open then.
 */
export function cancelStream(stream: http2.ClientHttp2Stream, code: number = CANCEL): void {
  if (stream.closed || stream.destroyed) return;
  // Node keeps a stream with unread data open until it is read: let it go.
  stream.resume();
  const session = stream.session;
  const budget = session === undefined || session.destroyed ? undefined : budgetOf(session);
  if (budget === undefined || budget.take() || !budget.defer(stream)) {
    stream.close(code);
    return;
  }
  stream.on("error", noop);
  if (!stream.writableEnded) stream.end();
}

function budgetOf(session: http2.Http2Session): ResetBudget<http2.ClientHttp2Stream> {
  let budget = budgets.get(session);
  if (budget === undefined) {
    budget = createResetBudget(actions);
    budgets.set(session, budget);
  }
  return budget;
}

function noop() {}
