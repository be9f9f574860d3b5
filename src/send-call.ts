import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import { isCallNotSent } from "@meshlite/transport";
import type { CallContext } from "./call-context.js";
import { createReplayableInput } from "./replayable-input.js";
import type { Subchannel } from "./subchannel.js";

/** A call that never reached a server is sent again, once, on another endpoint. */
const maxNotSentRetries = 1;
/** Messages of a request stream kept for such a retry. */
const maxReplayMessages = 128;

/** The remaining time to a deadline, for the attempt's `grpc-timeout`. */
function remaining(ctx: CallContext, deadline: number | undefined): number | undefined {
  if (deadline === undefined) return undefined;
  const left = Math.floor(deadline - performance.now());
  if (left <= 0) {
    throw new ConnectError(`deadline exceeded before the call was sent to "${ctx.target}"`, Code.DeadlineExceeded);
  }
  return left;
}

function notSentError(ctx: CallContext, e: unknown, sc: Subchannel): ConnectError {
  const cause = e instanceof Error ? e.message : String(e);
  return new ConnectError(
    `call to "${ctx.target}" was not sent (endpoint ${sc.key}): ${cause}`,
    Code.Unavailable,
    undefined,
    undefined,
    e,
  );
}

/** Sends a unary call to a picked endpoint, records its load, retries it once if it was not sent. */
export async function sendUnary<I extends DescMessage, O extends DescMessage>(
  ctx: CallContext,
  deadline: number | undefined,
  method: DescMethodUnary<I, O>,
  signal: AbortSignal | undefined,
  header: HeadersInit | undefined,
  input: MessageInitShape<I>,
  contextValues: ContextValues | undefined,
): Promise<UnaryResponse<I, O>> {
  let avoid: Subchannel | undefined;
  for (let attempt = 0; ; attempt++) {
    const sc = await ctx.pick(deadline, signal, avoid);
    const startedAt = sc.begin();
    try {
      const timeoutMs = remaining(ctx, deadline);
      const response = await ctx.transportOf(sc).unary(method, signal, timeoutMs, header, input, contextValues);
      sc.end(startedAt, { ok: true, pending: true, sample: true });
      return response;
    } catch (e) {
      const notSent = isCallNotSent(e);
      sc.end(startedAt, { ok: false, pending: true, sample: !notSent });
      if (!notSent) throw e;
      if (attempt >= maxNotSentRetries || ctx.isClosing() || signal?.aborted) throw notSentError(ctx, e, sc);
      avoid = sc;
    }
  }
}

/**
 * Opens a streaming call on a picked endpoint. Until the response headers
 * arrive the request messages are kept, so a call that was not sent can be
 * replayed once on another endpoint. The returned messages record the first
 * response (latency sample) and the end of the call on the endpoint.
 */
export async function sendStream<I extends DescMessage, O extends DescMessage>(
  ctx: CallContext,
  deadline: number | undefined,
  method: DescMethodStreaming<I, O>,
  signal: AbortSignal | undefined,
  header: HeadersInit | undefined,
  input: AsyncIterable<MessageInitShape<I>>,
  contextValues: ContextValues | undefined,
): Promise<StreamResponse<I, O>> {
  const replay = createReplayableInput(input, maxReplayMessages);
  let avoid: Subchannel | undefined;
  for (let attempt = 0; ; attempt++) {
    const sc = await ctx.pick(deadline, signal, avoid);
    const startedAt = sc.begin();
    let response: StreamResponse<I, O>;
    try {
      const timeoutMs = remaining(ctx, deadline);
      response = await ctx.transportOf(sc).stream(method, signal, timeoutMs, header, replay.iterable(), contextValues);
    } catch (e) {
      const notSent = isCallNotSent(e);
      sc.end(startedAt, { ok: false, pending: true, sample: !notSent });
      if (!notSent) throw e;
      if (attempt >= maxNotSentRetries || !replay.canReplay() || ctx.isClosing() || signal?.aborted) {
        throw notSentError(ctx, e, sc);
      }
      avoid = sc;
      continue;
    }
    replay.commit();
    return { ...response, message: recordStream(response.message, sc, startedAt) };
  }
}

async function* recordStream<T>(messages: AsyncIterable<T>, sc: Subchannel, startedAt: number): AsyncIterable<T> {
  let first = true;
  let ok = false;
  try {
    for await (const message of messages) {
      if (first) {
        first = false;
        sc.firstResponse(startedAt);
      }
      yield message;
    }
    ok = true;
  } finally {
    sc.end(startedAt, { ok, pending: first, sample: first && ok });
  }
}
