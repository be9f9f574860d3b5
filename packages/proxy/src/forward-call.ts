import * as http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import {
  type AttemptWatcher,
  type CallObserver,
  type CallWatcher,
  type Logger,
  orcaHeaderName,
  orcaTrailerName,
} from "@meshlite/core";
import {
  endpointFailureCodes,
  isOverloadAnswer,
  maxNotSentResends as maxNotSentRetries,
  NoEndpointError,
  parsePushbackMs,
  recordLoadReport,
  type Subchannel,
} from "@meshlite/pool";
import { CallNotSentError, isCallNotSent } from "@meshlite/transport";
import type { H2Stream, H2StreamConnection } from "@meshlite/transport/connection";
import { type AdmissionContext, admitCall } from "./admit-call.js";
import { type CallProtocol, isEnveloped, okCode, timeoutHeader } from "./call-protocol.js";
import type { Downstream } from "./downstream.js";
import { createBodyMeter, createEnvelopeMeter, type EnvelopeMeter } from "./envelope-meter.js";
import { answerError } from "./error-answer.js";
import type { Metrics } from "./metrics.js";
import { downstreamPickCall } from "./pick-call.js";
import { createReplayableBody, type ReplayableBody } from "./replayable-body.js";

/** What forwarding needs from the proxy. */
export interface ForwardContext extends AdmissionContext {
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly accessLog: boolean;
  readonly maxMessageBytes: number;
  /** Watches routed calls and their upstream attempts (ProxyOptions.observer), when set. */
  readonly observer: CallObserver | undefined;
}

/** The ORCA trailer as a Connect unary response sends it. */
const connectTrailer = `trailer-${orcaTrailerName}`;

/** Request headers that belong to one connection and are never forwarded. */
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
  "http2-settings",
  "te",
  "grpc-timeout",
  "connect-timeout-ms",
]);
const responseHopByHop = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

// Connect unary HTTP status back to a code, for metrics only.
const statusCodes: Record<number, number> = {
  200: okCode,
  400: Code.InvalidArgument,
  401: Code.Unauthenticated,
  403: Code.PermissionDenied,
  404: Code.Unimplemented,
  408: Code.DeadlineExceeded,
  409: Code.Aborted,
  415: Code.Internal,
  429: Code.ResourceExhausted,
  499: Code.Canceled,
  501: Code.Unimplemented,
  502: Code.Unavailable,
  503: Code.Unavailable,
  504: Code.DeadlineExceeded,
};

/** Forwards one call: admit and route it, pick an endpoint, stream both ways, answer errors in the client's protocol. */
export function forwardCall(ctx: ForwardContext, down: Downstream): void {
  const startedAt = performance.now();
  const contentType = down.headers["content-type"];
  const admission = admitCall(ctx, down);
  if (!admission.admitted) {
    down.body.discard();
    answerError(down, admission.protocol, contentType, admission);
    record(ctx, down, admission.protocol, admission.route, undefined, admission.code, startedAt, admission.message);
    return;
  }
  const { protocol, upstream: up, timeoutMs } = admission;
  const route = up.name;
  const call = downstreamPickCall(down);
  const watcher = ctx.observer ? watchCall(ctx.observer, down, up.route.target) : undefined;
  let attemptWatcher: AttemptWatcher | undefined;
  let attempts = 0;

  let finished = false;
  let sc: Subchannel<H2StreamConnection> | undefined;
  let scStartedAt = 0;
  let gotFirst = false;
  // What the upstream said of its load: an HTTP status without a gRPC status, grpc-retry-pushback-ms.
  let upstreamStatus: number | undefined;
  let pushbackMs: number | undefined;
  let timer: NodeJS.Timeout | undefined;
  let abort: AbortController | undefined;
  let upstream: H2Stream | undefined;

  function finish(code: number, message?: string) {
    if (finished) return;
    finished = true;
    if (timer) clearTimeout(timer);
    abort?.abort();
    const endpoint = sc?.key;
    const zone = sc?.endpoint.zone;
    if (sc) endAttempt(code === okCode, code);
    watcher?.ended(code);
    ctx.callEnded();
    record(ctx, down, protocol, route, endpoint, code, startedAt, message);
    if (route !== undefined && zone !== undefined) ctx.metrics.observeZoneCall(route, zone);
  }

  /** `notSent`: the attempt never reached the server, which is not the endpoint failing (as in the channel). */
  function endAttempt(ok: boolean, code: number, notSent = false) {
    const s = sc!;
    sc = undefined;
    attemptWatcher?.ended(code);
    attemptWatcher = undefined;
    const failure = !notSent && endpointFailureCodes.has(code);
    const overload = !notSent && !ok && isOverloadAnswer(code, upstreamStatus, pushbackMs);
    s.end(scStartedAt, {
      ok,
      failure,
      pending: !gotFirst,
      sample: !gotFirst && ok,
      ...(overload ? { overload, ...(pushbackMs !== undefined ? { pushbackMs } : {}) } : {}),
    });
  }

  /** Answers the client with an error in its protocol and ends the call. */
  function fail(code: number, message: string) {
    if (finished) return;
    upstream?.cancel();
    body.discard();
    answerError(down, protocol, contentType, { code, message });
    finish(code, message);
  }

  /** Fails the call when `chunk` completes a message over the size limit. */
  function overLimit(meter: EnvelopeMeter, chunk: Buffer, what: "request" | "response"): boolean {
    const big = meter.push(chunk);
    if (big < 0) return false;
    tooBig(what, big);
    return true;
  }

  function tooBig(what: "request" | "response", bytes: number) {
    if (what === "request") ctx.clientLimited("message_bytes");
    fail(
      Code.ResourceExhausted,
      `${what} message of ${bytes} bytes is over the proxy's limit of ${ctx.maxMessageBytes}`,
    );
  }

  /**
   * The response is complete: a request the client is still sending is not
   * needed any more. Its body is dropped, the client told to stop, and the
   * upstream stream let go (so the call ends now, not when the client stops).
   */
  function stopRequest(u: H2Stream) {
    if (body.ended) return;
    body.discard();
    down.stopRequest();
    u.cancel(NGHTTP2_NO_ERROR);
  }

  const deadline = timeoutMs !== undefined ? startedAt + timeoutMs : undefined;
  if (timeoutMs !== undefined) {
    timer = setTimeout(
      () => fail(Code.DeadlineExceeded, `deadline of ${timeoutMs} ms exceeded (at the proxy)`),
      timeoutMs,
    );
  }
  down.onAbort(() => {
    if (finished) return;
    abort?.abort();
    upstream?.cancel();
    finish(Code.Canceled, "canceled by the client");
  });

  const body: ReplayableBody = createReplayableBody(down.body, meterFor(protocol, ctx.maxMessageBytes), (bytes) =>
    tooBig("request", bytes),
  );

  // --- pick and send -------------------------------------------------------
  /** Picks an endpoint and sends the call there; synchronous unless it must wait for an endpoint or a connection. */
  function attempt(n: number, avoid: Subchannel<H2StreamConnection> | undefined) {
    try {
      const picked = up.pool.tryPick(avoid, call);
      if (picked === undefined) void attemptWhenReady(n, avoid);
      else send(n, picked);
    } catch (e) {
      internalError(e);
    }
  }

  /** A bug, not a call failure: the call fails with INTERNAL and the proxy stays up. */
  function internalError(e: unknown) {
    fail(Code.Internal, `proxy error: ${e instanceof Error ? e.message : String(e)}`);
  }

  async function attemptWhenReady(n: number, avoid: Subchannel<H2StreamConnection> | undefined) {
    abort ??= new AbortController();
    let picked: Subchannel<H2StreamConnection>;
    try {
      picked = await up.pool.waitForPick(deadline, abort.signal, avoid, call);
    } catch (e) {
      if (e instanceof NoEndpointError) {
        if (e.reason === "aborted") return;
        fail(e.code, e.message);
      } else {
        internalError(e);
      }
      return;
    }
    if (finished) return;
    try {
      send(n, picked);
    } catch (e) {
      internalError(e);
    }
  }

  function send(n: number, picked: Subchannel<H2StreamConnection>) {
    sc = picked;
    scStartedAt = sc.begin();
    gotFirst = false;
    upstreamStatus = undefined;
    pushbackMs = undefined;
    const headers: http2.OutgoingHttpHeaders = { ":method": down.method, ":path": down.path };
    for (const name in down.headers) {
      if (!hopByHop.has(name)) headers[name] = down.headers[name];
    }
    if (protocol === "grpc") headers.te = "trailers";
    if (up.route.upstreamAuthority === undefined && down.authority !== undefined)
      headers[":authority"] = down.authority;
    if (deadline !== undefined) {
      const [name, value] = timeoutHeader(protocol, deadline - performance.now());
      headers[name] = value;
    }
    if (watcher) {
      attemptWatcher = watcher.attemptStarted({
        address: picked.key,
        index: attempts++,
        header: { set: (name, value) => (headers[name] = value) },
      });
    }
    let stream: H2Stream;
    try {
      // Picks are ready connections, so this opens at once. Node ends a GET's
      // stream by itself; a POST's stays open for the body.
      stream = sc.connection.openStream(headers);
    } catch (e) {
      // Not ready after all (it changed state since the pick): never sent, so resent.
      retryOrFail(n, e, `could not open a stream to ${picked.key}`);
      return;
    }
    upstream = stream;
    wireUpstream(stream, n);
    body.sendTo(stream);
  }

  function retryOrFail(n: number, e: unknown, what: string) {
    if (finished) return;
    const failed = sc!;
    const notSent = isCallNotSent(e);
    if (notSent && n < maxNotSentRetries && body.replayable) {
      endAttempt(false, Code.Unavailable, true);
      upstream = undefined;
      body.detach();
      attempt(n + 1, failed);
      return;
    }
    const cause = e instanceof Error ? e.message : String(e);
    fail(Code.Unavailable, `${what} (route ${route}): ${cause}`);
  }

  function wireUpstream(stream: H2Stream, n: number) {
    const responseMeter = meterFor(protocol, ctx.maxMessageBytes);
    let code: number = okCode;
    let trailers: http2.OutgoingHttpHeaders | undefined;
    let ended = false;
    stream.listen({
      response(raw, endStream) {
        if (finished) return;
        body.commit();
        const status = Number(raw[":status"]);
        const headers: http2.OutgoingHttpHeaders = {};
        for (const name in raw) {
          if (name.charCodeAt(0) !== 58 && !responseHopByHop.has(name)) headers[name] = raw[name];
        }
        code = codeOf(protocol, status, raw["grpc-status"]);
        // Connect unary responses carry trailers as `trailer-` headers.
        if (sc) recordLoadReport(sc, raw[orcaTrailerName] ?? raw[connectTrailer], raw[orcaHeaderName], ctx.logger);
        // A Connect unary error's status is its code's (503 is any UNAVAILABLE): only gRPC and gRPC-web say more by it.
        if (status !== 200 && raw["grpc-status"] === undefined && protocol !== "connect-unary") upstreamStatus = status;
        pushbackMs = parsePushbackMs(raw["grpc-retry-pushback-ms"] as string | undefined);
        down.respond(status, headers, endStream, !endStream && protocol === "grpc" && !down.http1);
        if (endStream) {
          ended = true;
          stopRequest(stream);
        }
      },
      data(chunk) {
        if (finished) return;
        if (!gotFirst) {
          gotFirst = true;
          sc?.firstResponse(scStartedAt);
        }
        if (overLimit(responseMeter, chunk, "response")) return;
        if (!down.write(chunk)) {
          stream.pause();
          down.onDrain(() => stream.resume());
        }
      },
      trailers(raw) {
        trailers = {};
        for (const name in raw) {
          if (name.charCodeAt(0) !== 58) trailers[name] = raw[name];
        }
        if (raw["grpc-status"] !== undefined) code = Number(raw["grpc-status"]);
        if (sc) recordLoadReport(sc, raw[orcaTrailerName], raw[orcaHeaderName], ctx.logger);
        pushbackMs ??= parsePushbackMs(raw["grpc-retry-pushback-ms"] as string | undefined);
      },
      end() {
        if (finished || ended) return;
        ended = true;
        if (protocol === "grpc" && !down.http1 && trailers === undefined) {
          code = Code.Internal;
          trailers = {
            "grpc-status": String(Code.Internal),
            "grpc-message": "upstream ended the response without a grpc-status",
          };
        }
        down.end(trailers);
        stopRequest(stream);
      },
      close(outcome) {
        if (finished || stream !== upstream) return;
        if (ended && outcome.rstCode === NGHTTP2_NO_ERROR) {
          finish(code);
          return;
        }
        if (outcome.notSent) {
          retryOrFail(
            n,
            outcome.error ?? new CallNotSentError("REFUSED_STREAM"),
            `endpoint ${sc?.key} refused the stream`,
          );
          return;
        }
        if (ended) {
          finish(code);
          return;
        }
        // The connection going away resets its streams with CANCEL too: that is
        // the endpoint failing. A CANCEL the server sent on a live connection is
        // a cancellation (as gRPC maps RST_STREAM codes).
        const lost = outcome.connectionLost;
        const error = outcome.error;
        const detail = lost
          ? `connection lost${error ? ` (${error.message})` : ""}`
          : (error?.message ?? `stream reset with HTTP/2 code ${outcome.rstCode}`);
        fail(
          outcome.rstCode === NGHTTP2_CANCEL && !lost ? Code.Canceled : Code.Unavailable,
          `upstream ${sc?.key} (route ${route}) failed: ${detail}`,
        );
      },
    });
  }

  attempt(0, undefined);
}

/** Starts watching a routed call: its method is the path (which the observer may record as "other"). */
function watchCall(observer: CallObserver, down: Downstream, target: string): CallWatcher {
  const query = down.path.indexOf("?");
  return observer.callStarted({
    method: down.path.slice(1, query < 0 ? undefined : query),
    knownMethod: false,
    target,
    side: "proxy",
    incomingHeader: {
      get(name) {
        const value = down.headers[name];
        return Array.isArray(value) ? value.join(",") : value;
      },
    },
  });
}

function codeOf(protocol: CallProtocol, status: number, grpcStatus: unknown): number {
  if (grpcStatus !== undefined) return Number(grpcStatus);
  if (protocol === "connect-unary" || status !== 200) return statusCodes[status] ?? Code.Unknown;
  return okCode;
}

function meterFor(protocol: CallProtocol, maxMessageBytes: number): EnvelopeMeter {
  return isEnveloped(protocol) ? createEnvelopeMeter(maxMessageBytes) : createBodyMeter(maxMessageBytes);
}

/** Counts a finished call in the metrics (once routed) and the access log. */
function record(
  ctx: ForwardContext,
  down: Downstream,
  protocol: CallProtocol | undefined,
  route: string | undefined,
  endpoint: string | undefined,
  code: number,
  startedAt: number,
  message: string | undefined,
): void {
  const ms = performance.now() - startedAt;
  if (route !== undefined) ctx.metrics.observeCall(route, endpoint, code, ms / 1000);
  if (ctx.accessLog) {
    ctx.logger.info("call", {
      route: route ?? "-",
      path: down.path,
      authority: down.authority,
      protocol,
      endpoint,
      code,
      ms: Math.round(ms * 100) / 100,
      ...(message ? { error: message } : {}),
    });
  }
}
