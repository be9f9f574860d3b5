import {
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodStreaming,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import { type AttemptWatcher, type CallWatcher, orcaHeaderName, orcaTrailerName, type PickCall } from "@meshlite/core";
import {
  type CallOutcome,
  endpointFailureCodes,
  isOverloadAnswer,
  maxNotSentResends,
  parsePushbackMs,
  recordLoadReport,
  type Subchannel,
} from "@meshlite/pool";
import { isCallNotSent, isConnectionLost, responseField } from "@meshlite/transport";
import pRetry from "p-retry";
import type { CallContext } from "./call-context.js";
import type { MethodSettings, ResolvedHedging } from "./method-settings.js";
import { ConnectPickCall } from "./pick-call.js";
import { createReplayableInput, type ReplayableInput } from "./replayable-input.js";
import { isRetryable, methodName, type ResolvedRetryPolicy, retryDelay } from "./retry-policy.js";
import { withMessages } from "./stream-response.js";

/** Messages of a request stream kept so the call can be replayed. */
const maxReplayMessages = 128;

/** The state of one call across its attempts. */
interface CallState {
  readonly deadline: number | undefined;
  /** What the balancer sees of the call: method and request headers. */
  readonly call: PickCall;
  readonly signal: AbortSignal | undefined;
  /** The endpoint of the last failed attempt: the next one goes elsewhere if it can. */
  avoid: Subchannel | undefined;
  /** The endpoint of the current attempt. */
  current?: Subchannel;
  /** The request headers as the caller gave them. */
  readonly header: HeadersInit | undefined;
  /** Watches the call and its attempts (ChannelOptions.observer), when set. */
  readonly watch: CallWatcher | undefined;
  /** Attempts started, for the observer. */
  attempts: number;
  /** Fail at once when every endpoint is failing (the method's waitForReady is false). */
  readonly failFast: boolean;
}

/** Sends a unary call: picks, records load, resends unsent calls, retries and hedges by policy. */
export async function sendUnary<I extends DescMessage, O extends DescMessage>(
  ctx: CallContext,
  settings: MethodSettings,
  deadline: number | undefined,
  method: DescMethodUnary<I, O>,
  signal: AbortSignal | undefined,
  header: HeadersInit | undefined,
  input: MessageInitShape<I>,
  contextValues: ContextValues | undefined,
  watch?: CallWatcher,
): Promise<UnaryResponse<I, O>> {
  const state = callState(deadline, method, signal, header, watch, settings.failFast);
  const attempt = (attemptSignal = signal) =>
    sendAttempt(ctx, state, method, attemptSignal, async (sc, timeoutMs, _startedAt, attemptHeader, watcher) => {
      if (watcher?.messageSent) watcher.messageSent(sizeOf(method.input, input));
      const response = await ctx
        .transportOf(sc)
        .unary(method, attemptSignal, timeoutMs, attemptHeader, input, contextValues);
      if (watcher?.messageReceived) watcher.messageReceived(sizeOf(method.output, response.message));
      return response;
    });
  if (settings.hedging !== undefined) return sendHedged(ctx, state, method, settings.hedging, attempt);
  const policy = settings.retry;
  if (policy === undefined) return attempt();
  return withRetries(ctx, state, method, policy, () => attempt());
}

/**
 * Opens a streaming call. Until the response headers arrive the request
 * messages are kept, so an attempt that failed before any response message
 * can be replayed on another endpoint. The returned messages record the first
 * response (latency sample) and the end of the call on the endpoint.
 */
export async function sendStream<I extends DescMessage, O extends DescMessage>(
  ctx: CallContext,
  settings: MethodSettings,
  deadline: number | undefined,
  method: DescMethodStreaming<I, O>,
  signal: AbortSignal | undefined,
  header: HeadersInit | undefined,
  input: AsyncIterable<MessageInitShape<I>>,
  contextValues: ContextValues | undefined,
  watch?: CallWatcher,
): Promise<StreamResponse<I, O>> {
  const state = callState(deadline, method, signal, header, watch, settings.failFast);
  const replay = createReplayableInput(input, maxReplayMessages);
  const attempt = () =>
    sendAttempt(
      ctx,
      state,
      method,
      signal,
      async (sc, timeoutMs, startedAt, attemptHeader, watcher) => {
        const sent = watcher?.messageSent;
        const requests = sent ? measured(replay.iterable(), (m) => sent(sizeOf(method.input, m))) : replay.iterable();
        const response = await ctx
          .transportOf(sc)
          .stream(method, signal, timeoutMs, attemptHeader, requests, contextValues);
        return withMessages(response, recordStream(ctx, response, sc, startedAt, method, watcher));
      },
      replay,
    );
  const policy = settings.retry;
  // With a retry policy, an attempt lasts until the first response message:
  // a failure before it (trailers-only or right after the headers) is retried.
  const attemptToFirstMessage = async () => {
    const response = await attempt();
    const messages = response.message[Symbol.asyncIterator]();
    try {
      const first = await messages.next();
      return withMessages(response, prepend(first, messages));
    } catch (e) {
      state.avoid = state.current;
      throw e;
    }
  };
  try {
    const response =
      policy === undefined
        ? await attempt()
        : await withRetries(ctx, state, method, policy, attemptToFirstMessage, replay);
    replay.commit();
    return response;
  } catch (e) {
    // No attempt follows: the caller's request stream is released (its `finally` runs).
    replay.release();
    throw e;
  }
}

function callState(
  deadline: number | undefined,
  method: DescMethod,
  signal: AbortSignal | undefined,
  header: HeadersInit | undefined,
  watch: CallWatcher | undefined,
  failFast: boolean,
): CallState {
  const call = new ConnectPickCall(method, header);
  return { deadline, call, signal, avoid: undefined, header, watch, attempts: 0, failFast };
}

/** A message's size on the wire before compression: its protobuf encoding (observers only). */
function sizeOf<T extends DescMessage>(schema: T, message: MessageInitShape<T>): number {
  return toBinary(schema, create(schema, message)).byteLength;
}

async function* measured<T>(messages: AsyncIterable<T>, each: (message: T) => void): AsyncIterable<T> {
  for await (const message of messages) {
    each(message);
    yield message;
  }
}

async function* prepend<T>(first: IteratorResult<T>, rest: AsyncIterator<T>): AsyncIterable<T> {
  if (first.done) return;
  try {
    yield first.value;
    yield* { [Symbol.asyncIterator]: () => rest };
  } finally {
    // A reader that stops early must still end the call on its endpoint.
    await rest.return?.();
  }
}

/**
 * One attempt: pick an endpoint, send, record the outcome on the endpoint.
 * A call that never reached a server is resent at once to another endpoint
 * (up to maxNotSentResends times). Streaming attempts hand the end of the call over to the response.
 */
async function sendAttempt<T>(
  ctx: CallContext,
  state: CallState,
  method: DescMethod,
  signal: AbortSignal | undefined,
  send: (
    sc: Subchannel,
    timeoutMs: number | undefined,
    startedAt: number,
    header: HeadersInit | undefined,
    watcher: AttemptWatcher | undefined,
  ) => Promise<T>,
  replay?: ReplayableInput<unknown>,
): Promise<T> {
  const streaming = replay !== undefined;
  for (let resend = 0; ; resend++) {
    // No promise on the common path: an endpoint is ready.
    const sc =
      ctx.tryPick(state.avoid, state.call) ??
      (await ctx.waitForPick(state.deadline, signal, state.avoid, state.call, state.failFast));
    // Before begin(): a deadline that ran out while waiting for an endpoint
    // is not the endpoint's failure.
    const timeoutMs = remaining(ctx, state.deadline);
    state.current = sc;
    // With an observer the attempt gets its own copy of the headers, for it to add to (`traceparent`).
    let header = state.header;
    let watcher: AttemptWatcher | undefined;
    if (state.watch !== undefined) {
      const copy = new Headers(header);
      watcher = state.watch.attemptStarted({ address: sc.key, index: state.attempts++, header: copy });
      header = copy;
    }
    const startedAt = sc.begin();
    const lostBefore = sc.connection.lostStreams();
    try {
      const result = await send(sc, timeoutMs, startedAt, header, watcher);
      if (!streaming) {
        recordResponseLoad(ctx, sc, result as UnaryResponse);
        sc.end(startedAt, { ok: true, failure: false, pending: true, sample: true });
        watcher?.ended(0);
      }
      return result;
    } catch (raw) {
      const notSent = isCallNotSent(raw);
      const error = notSent ? notSentError(ctx, raw, sc) : classify(ctx, raw, sc, lostBefore, signal);
      // A failing server's report counts too (its errors per second matter to weighted round robin).
      if (!notSent) {
        recordLoadReport(sc, error.metadata.get(orcaTrailerName), error.metadata.get(orcaHeaderName), ctx.logger);
      }
      // A call that never reached the server (GOAWAY race, REFUSED_STREAM, connection not ready) is
      // resent elsewhere and is not the endpoint failing: a server that rotates its connections
      // every second must not be ejected or penalized for it.
      sc.end(startedAt, failedOutcome(error, !notSent, true));
      watcher?.ended(error.code);
      state.avoid = sc;
      const canResend = notSent && resend < maxNotSentResends && !ctx.isClosing() && !signal?.aborted;
      if (!canResend || (replay !== undefined && !replay.canReplay())) throw error;
      sc.stats.retries++;
      ctx.emit({
        type: "retry",
        method: methodName(method),
        attempt: resend + 1,
        code: error.code,
        address: sc.key,
        kind: "not-sent",
        delayMs: 0,
      });
    }
  }
}

/** Runs attempts under a retry policy (p-retry drives the loop; the delays are gRPC's, or the server's pushback). */
async function withRetries<T>(
  ctx: CallContext,
  state: CallState,
  method: DescMethod,
  policy: ResolvedRetryPolicy,
  attempt: () => Promise<T>,
  replay?: ReplayableInput<unknown>,
): Promise<T> {
  const retryable = (e: unknown) => isRetryable(policy, e);
  try {
    const result = await pRetry(attempt, {
      retries: policy.maxAttempts - 1,
      minTimeout: 0,
      factor: 1,
      randomize: false,
      onFailedAttempt({ error }) {
        if (retryable(error)) ctx.throttle.onFailure();
      },
      async shouldRetry({ error, attemptNumber }) {
        if (!retryable(error) || !ctx.throttle.allowRetry() || ctx.isClosing() || state.signal?.aborted) return false;
        if (replay !== undefined && !replay.canReplay()) return false;
        const delayMs =
          parsePushbackMs(error.metadata.get("grpc-retry-pushback-ms")) ?? retryDelay(policy, attemptNumber);
        if (delayMs < 0) return false;
        if (state.deadline !== undefined && performance.now() + delayMs >= state.deadline) return false;
        if (state.avoid) state.avoid.stats.retries++;
        ctx.emit({
          type: "retry",
          method: methodName(method),
          attempt: attemptNumber,
          code: error.code,
          address: state.avoid?.key ?? "",
          kind: "policy",
          delayMs,
        });
        return sleep(delayMs, state.signal);
      },
    });
    ctx.throttle.onSuccess();
    return result;
  } catch (e) {
    throw e instanceof ConnectError ? e : ConnectError.from(e);
  }
}

/**
 * Hedging: a copy of the call goes to another endpoint each time `delayMs`
 * passes without an answer, up to `maxAttempts` copies; the first success
 * wins and the others are canceled. A failure not in `nonFatalCodes` ends the call.
 */
function sendHedged<T>(
  ctx: CallContext,
  state: CallState,
  method: DescMethod,
  hedging: ResolvedHedging,
  attempt: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const maxAttempts = hedging.maxAttempts;
  return new Promise<T>((resolve, reject) => {
    const controllers: AbortController[] = [];
    let failed = 0;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      for (const c of controllers) c.abort();
      fn();
    };
    const launch = () => {
      if (timer) clearTimeout(timer);
      if (settled || controllers.length >= maxAttempts) return;
      if (controllers.length > 0) {
        if (!ctx.throttle.allowRetry()) return;
        // The copy goes elsewhere than the attempt that is slow to answer.
        state.avoid = state.current;
        ctx.emit({
          type: "retry",
          method: methodName(method),
          attempt: controllers.length,
          code: 0,
          address: state.current?.key ?? "",
          kind: "hedge",
          delayMs: hedging.delayMs,
        });
      }
      const controller = new AbortController();
      controllers.push(controller);
      const signal = state.signal ? AbortSignal.any([state.signal, controller.signal]) : controller.signal;
      attempt(signal).then(
        (result) =>
          finish(() => {
            ctx.throttle.onSuccess();
            resolve(result);
          }),
        (error: unknown) => {
          if (settled) return;
          failed++;
          const retryable = error instanceof ConnectError && hedging.nonFatalCodes.includes(error.code);
          if (retryable) ctx.throttle.onFailure();
          if (
            !retryable ||
            (failed === controllers.length && (controllers.length >= maxAttempts || !ctx.throttle.allowRetry()))
          ) {
            finish(() => reject(error));
          } else if (failed === controllers.length) {
            launch();
          }
        },
      );
      if (controllers.length < maxAttempts) {
        timer = setTimeout(launch, hedging.delayMs);
      }
    };
    launch();
  });
}

/**
 * Turns an attempt's error into what the caller should see. A call cut by its
 * connection dying shows up as CANCELED, INTERNAL or ABORTED from Node.js; it
 * is UNAVAILABLE (gRPC's code for a transport failure), so that retry policies
 * and outlier detection see it for what it is.
 */
function classify(
  ctx: CallContext,
  raw: unknown,
  sc: Subchannel,
  lostBefore: number,
  signal: AbortSignal | undefined,
): ConnectError {
  const error = ConnectError.from(raw);
  if (signal?.aborted || error.isWireError) return error;
  if (isConnectionLost(raw) || sc.connection.lostStreams() > lostBefore) {
    return new ConnectError(
      `connection to endpoint ${sc.key} of "${ctx.target}" was lost during the call: ${error.rawMessage}`,
      Code.Unavailable,
      error.metadata,
      undefined,
      raw,
    );
  }
  return error;
}

function notSentError(ctx: CallContext, raw: unknown, sc: Subchannel): ConnectError {
  const cause = raw instanceof Error ? raw.message : String(raw);
  return new ConnectError(
    `call to "${ctx.target}" was not sent (endpoint ${sc.key}): ${cause}`,
    Code.Unavailable,
    undefined,
    undefined,
    raw,
  );
}

/** The remaining time to a deadline, for the attempt's `grpc-timeout`. */
function remaining(ctx: CallContext, deadline: number | undefined): number | undefined {
  if (deadline === undefined) return undefined;
  const left = Math.floor(deadline - performance.now());
  if (left <= 0) {
    throw new ConnectError(`deadline exceeded before the call was sent to "${ctx.target}"`, Code.DeadlineExceeded);
  }
  return left;
}

/**
 * How a failed attempt ended, for its endpoint's load and outlier detection.
 * `reached`: the call reached the server (else it is neither the endpoint's
 * failure nor a latency sample). An overload answer (RESOURCE_EXHAUSTED,
 * HTTP 429/503 without a gRPC or Connect status, `grpc-retry-pushback-ms`)
 * is marked so, for the overload penalty.
 */
function failedOutcome(error: ConnectError, reached: boolean, pending: boolean): CallOutcome {
  const failure = reached && endpointFailureCodes.has(error.code);
  if (!reached) return { ok: false, failure, pending, sample: false };
  const pushbackMs = parsePushbackMs(error.metadata.get("grpc-retry-pushback-ms"));
  const status = /^HTTP (\d{3})$/.exec(error.rawMessage);
  const overload = isOverloadAnswer(error.code, status ? Number(status[1]) : undefined, pushbackMs);
  if (!overload) return { ok: false, failure, pending, sample: true };
  return { ok: false, failure, pending, sample: true, overload, ...(pushbackMs !== undefined ? { pushbackMs } : {}) };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (ms <= 0) return Promise.resolve(!signal?.aborted);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** The load report (ORCA) a response carries, recorded on its endpoint; read without building the lean transport's Headers. */
function recordResponseLoad(ctx: CallContext, sc: Subchannel, response: UnaryResponse | StreamResponse): void {
  const trailer = responseField(response, "trailer", orcaTrailerName);
  const header = trailer === undefined ? responseField(response, "header", orcaHeaderName) : undefined;
  recordLoadReport(sc, trailer, header, ctx.logger);
}

async function* recordStream<I extends DescMessage, O extends DescMessage>(
  ctx: CallContext,
  response: StreamResponse<I, O>,
  sc: Subchannel,
  startedAt: number,
  method: DescMethodStreaming<I, O>,
  watcher: AttemptWatcher | undefined,
): AsyncIterable<MessageShape<O>> {
  const received = watcher?.messageReceived;
  const messages = response.message;
  let first = true;
  let ok = false;
  let error: ConnectError | undefined;
  try {
    for await (const message of messages) {
      if (first) {
        first = false;
        sc.firstResponse(startedAt);
      }
      if (received) received(sizeOf(method.output, message));
      yield message;
    }
    ok = true;
  } catch (e) {
    if (e instanceof ConnectError) {
      error = e;
      recordLoadReport(sc, e.metadata.get(orcaTrailerName), e.metadata.get(orcaHeaderName), ctx.logger);
    }
    throw e;
  } finally {
    if (ok) recordResponseLoad(ctx, sc, response);
    sc.end(
      startedAt,
      error === undefined
        ? { ok, failure: false, pending: first, sample: first && ok }
        : { ...failedOutcome(error, true, first), sample: false },
    );
    // A reader that stops early cancels the call.
    watcher?.ended(error?.code ?? (ok ? 0 : Code.Canceled));
  }
}
