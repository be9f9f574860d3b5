import * as http2 from "node:http2";
import { Code } from "@connectrpc/connect";
import type { Logger } from "@meshlite/core";
import {
  endpointFailureCodes,
  maxNotSentResends as maxNotSentRetries,
  NoEndpointError,
  type Subchannel,
} from "@meshlite/pool";
import { CallNotSentError, isCallNotSent } from "@meshlite/transport";
import {
  type CallProtocol,
  detectProtocol,
  encodeGrpcMessage,
  errorResponse,
  isEnveloped,
  okCode,
  parseTimeout,
  serviceOf,
  timeoutHeader,
} from "./call-protocol.js";
import type { Downstream } from "./downstream.js";
import { createBodyMeter, createEnvelopeMeter, type EnvelopeMeter } from "./envelope-meter.js";
import type { Metrics } from "./metrics.js";
import { downstreamPickCall } from "./pick-call.js";
import type { Router } from "./router.js";
import type { Upstream } from "./upstream.js";

/** What forwarding needs from the proxy. */
export interface ForwardContext {
  readonly router: Router<Upstream>;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly accessLog: boolean;
  readonly maxHeaderBytes: number;
  readonly maxMessageBytes: number;
  readonly maxInFlight: number;
  /** Counts calls in flight (for limits and draining). */
  callStarted(): number;
  callEnded(): void;
}

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

/** Bytes of request body kept for a resend until the upstream answers. */
const maxReplayBytes = 1024 * 1024;

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

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

/** Forwards one call: route, pick an endpoint, stream both ways, answer errors in the client's protocol. */
export function forwardCall(ctx: ForwardContext, down: Downstream): void {
  const startedAt = performance.now();
  const contentType = down.headers["content-type"];
  const protocol = detectProtocol(down.method, contentType);

  let finished = false;
  let route = "-";
  let sc: Subchannel | undefined;
  let scStartedAt = 0;
  let gotFirst = false;
  let counted = false;
  let timer: NodeJS.Timeout | undefined;
  let abort: AbortController | undefined;
  let upstream: http2.ClientHttp2Stream | undefined;

  function finish(code: number, message?: string) {
    if (finished) return;
    finished = true;
    if (timer) clearTimeout(timer);
    abort?.abort();
    const ms = performance.now() - startedAt;
    const endpoint = sc?.key;
    if (sc) endAttempt(code === okCode, code);
    if (counted) ctx.callEnded();
    if (route !== "-") ctx.metrics.observeCall(route, endpoint, code, ms / 1000);
    if (ctx.accessLog) {
      ctx.logger.info("call", {
        route,
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

  function endAttempt(ok: boolean, code: number) {
    const s = sc!;
    sc = undefined;
    s.end(scStartedAt, { ok, failure: endpointFailureCodes.has(code), pending: !gotFirst, sample: !gotFirst && ok });
  }

  /** Answers the client with an error in its protocol and ends the call. */
  function fail(code: number, message: string) {
    if (finished) return;
    if (upstream && !upstream.destroyed) upstream.close(NGHTTP2_CANCEL);
    discardBody();
    if (!down.headersSent()) {
      if (protocol === undefined) {
        down.respond(
          code === Code.Unimplemented ? 404 : 415,
          { "content-type": "text/plain; charset=utf-8" },
          false,
          false,
        );
        down.write(Buffer.from(`${message}\n`));
        down.end();
      } else {
        const r = errorResponse(protocol, contentType, { code, message });
        down.respond(r.status, r.headers, r.body === undefined, false);
        if (r.body) {
          down.write(r.body);
          down.end();
        }
      }
    } else if (protocol === "grpc" && !down.http1) {
      down.end({ "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) });
    } else {
      // Mid-stream in a protocol whose status travels in the body: without
      // decoding messages the proxy cannot append one safely, so it resets.
      down.reset();
    }
    finish(code, message);
  }

  /** Fails the call when `chunk` completes a message over the size limit. */
  function overLimit(meter: EnvelopeMeter, chunk: Buffer, what: "request" | "response"): boolean {
    const big = meter.push(chunk);
    if (big < 0) return false;
    fail(Code.ResourceExhausted, `${what} message of ${big} bytes is over the proxy's limit of ${ctx.maxMessageBytes}`);
    return true;
  }

  /**
   * The response is complete: a request the client is still sending is not
   * needed any more. Its body is dropped, the client told to stop, and the
   * upstream stream let go (so the call ends now, not when the client stops).
   */
  function stopRequest(u: http2.ClientHttp2Stream) {
    if (requestEnded) return;
    discardBody();
    down.stopRequest();
    if (!u.destroyed) u.close(NGHTTP2_NO_ERROR);
  }

  function discardBody() {
    down.body.removeAllListeners("data");
    down.body.on("data", () => {});
    down.body.resume();
  }

  // --- validate and route ------------------------------------------------
  if (protocol === undefined) {
    fail(
      Code.InvalidArgument,
      `unsupported request: ${down.method} with content-type ${JSON.stringify(contentType ?? null)}; meshlite-proxy forwards ` +
        "gRPC (application/grpc), gRPC-web (application/grpc-web) and Connect (application/proto, application/json, application/connect+*) calls",
    );
    return;
  }
  if (down.method !== "POST" && down.method !== "GET") {
    fail(Code.Unimplemented, `method ${down.method} is not a gRPC or Connect call (expected POST, or GET for Connect)`);
    return;
  }
  if (protocol === "grpc" && down.http1) {
    fail(Code.Unimplemented, "gRPC needs HTTP/2; over HTTP/1.1 use gRPC-web or Connect");
    return;
  }
  if (down.headerBytes > ctx.maxHeaderBytes) {
    fail(
      Code.ResourceExhausted,
      `request headers are ${down.headerBytes} bytes, over the proxy's limit of ${ctx.maxHeaderBytes}`,
    );
    return;
  }
  const timeoutMs = parseTimeout(protocol, down.headers);
  if (timeoutMs !== undefined && Number.isNaN(timeoutMs)) {
    const [name] = timeoutHeader(protocol, 0);
    fail(
      Code.InvalidArgument,
      `malformed ${name} header ${JSON.stringify(down.headers[name])}: expected ${name === "grpc-timeout" ? "1-8 digits and a unit H, M, S, m, u or n" : "milliseconds as digits"}`,
    );
    return;
  }
  const service = serviceOf(down.path.split("?")[0]);
  const upstreamOf = ctx.router.match(down.authority, service);
  if (upstreamOf === undefined) {
    fail(
      Code.Unimplemented,
      `no route for authority "${down.authority ?? ""}" and service "${service ?? ""}"; configured routes: ${ctx.router.describe()}`,
    );
    return;
  }
  const up: Upstream = upstreamOf;
  const call = downstreamPickCall(down);
  route = up.name;
  counted = true;
  if (ctx.callStarted() > ctx.maxInFlight) {
    fail(Code.ResourceExhausted, `the proxy has ${ctx.maxInFlight} calls in flight, its limit; try again later`);
    return;
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
    if (upstream && !upstream.destroyed) upstream.close(NGHTTP2_CANCEL);
    finish(Code.Canceled, "canceled by the client");
  });

  // --- request body: pumped into the current upstream stream -------------
  const requestMeter: EnvelopeMeter = isEnveloped(protocol)
    ? createEnvelopeMeter(ctx.maxMessageBytes)
    : createBodyMeter(ctx.maxMessageBytes);
  let replay: Buffer[] | undefined = [];
  let replayBytes = 0;
  let requestEnded = false;
  let committed = false;
  // The newest request chunk waits for the end of the current I/O turn: when
  // the request ends in the same turn (every unary call), chunk and end go
  // upstream as one DATA frame with END_STREAM instead of two frames, which
  // spares the backend and the proxy a frame per call.
  let held: Buffer | undefined;
  let flushScheduled = false;

  function onRequestData(chunk: Buffer) {
    if (overLimit(requestMeter, chunk, "request")) return;
    if (replay) {
      replayBytes += chunk.length;
      if (replayBytes <= maxReplayBytes) replay.push(chunk);
      else replay = undefined;
    }
    if (upstream === undefined) return; // the body is paused; send() writes the replay
    if (held) writeUpstream(upstream, held);
    held = chunk;
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushHeld);
    }
  }
  function flushHeld() {
    flushScheduled = false;
    const chunk = held;
    held = undefined;
    if (chunk && upstream && !upstream.destroyed) writeUpstream(upstream, chunk);
  }
  function writeUpstream(u: http2.ClientHttp2Stream, chunk: Buffer) {
    if (u.write(chunk)) return;
    down.body.pause();
    u.once("drain", () => {
      if (u === upstream) down.body.resume();
    });
  }
  function onRequestEnd() {
    requestEnded = true;
    const chunk = held;
    held = undefined;
    if (upstream && !upstream.destroyed) upstream.end(chunk);
  }

  // --- pick and send -------------------------------------------------------
  /** Picks an endpoint and sends the call there; synchronous unless it must wait for an endpoint or a connection. */
  function attempt(n: number, avoid: Subchannel | undefined) {
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

  async function attemptWhenReady(n: number, avoid: Subchannel | undefined) {
    abort ??= new AbortController();
    let picked: Subchannel;
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

  function send(n: number, picked: Subchannel) {
    sc = picked;
    scStartedAt = sc.begin();
    gotFirst = false;
    const headers: http2.OutgoingHttpHeaders = { ":method": down.method, ":path": down.path };
    for (const name in down.headers) {
      if (!hopByHop.has(name)) headers[name] = down.headers[name];
    }
    if (protocol === "grpc") headers.te = "trailers";
    if (up.route.upstreamAuthority === undefined && down.authority !== undefined)
      headers[":authority"] = down.authority;
    if (deadline !== undefined) {
      const [name, value] = timeoutHeader(protocol!, deadline - performance.now());
      headers[name] = value;
    }
    let stream: http2.ClientHttp2Stream;
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
    held = undefined; // a held chunk is in the replay
    wireUpstream(stream, n);
    if (replay) for (const chunk of replay) stream.write(chunk);
    if (requestEnded) stream.end();
    else down.body.resume();
  }

  function retryOrFail(n: number, e: unknown, what: string) {
    if (finished) return;
    const failed = sc!;
    const notSent = isCallNotSent(e);
    if (notSent && n < maxNotSentRetries && replay !== undefined && !committed) {
      endAttempt(false, Code.Unavailable);
      upstream = undefined;
      // No body flows while no stream takes it: chunks would only go to the
      // replay buffer, and one past its limit would be lost. attempt() resumes
      // the body after writing the replay to the new stream.
      down.body.pause();
      attempt(n + 1, failed);
      return;
    }
    const cause = e instanceof Error ? e.message : String(e);
    fail(Code.Unavailable, `${what} (route ${route}): ${cause}`);
  }

  function wireUpstream(stream: http2.ClientHttp2Stream, n: number) {
    const responseMeter = isEnveloped(protocol!)
      ? createEnvelopeMeter(ctx.maxMessageBytes)
      : createBodyMeter(ctx.maxMessageBytes);
    let code: number = okCode;
    let trailers: http2.OutgoingHttpHeaders | undefined;
    let ended = false;
    let streamError: Error | undefined;
    stream.on("error", (e) => {
      streamError = e;
    });
    stream.on("response", (raw, flags) => {
      if (finished) return;
      committed = true;
      replay = undefined;
      const status = Number(raw[":status"]);
      const headers: http2.OutgoingHttpHeaders = {};
      for (const name in raw) {
        if (name.charCodeAt(0) !== 58 && !responseHopByHop.has(name)) headers[name] = raw[name];
      }
      code = codeOf(protocol!, status, raw["grpc-status"]);
      const endStream = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
      down.respond(status, headers, endStream, !endStream && protocol === "grpc" && !down.http1);
      if (endStream) {
        ended = true;
        stopRequest(stream);
      }
    });
    stream.on("data", (chunk: Buffer) => {
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
    });
    stream.on("trailers", (raw) => {
      trailers = {};
      for (const name in raw) {
        if (name.charCodeAt(0) !== 58) trailers[name] = raw[name];
      }
      if (raw["grpc-status"] !== undefined) code = Number(raw["grpc-status"]);
    });
    stream.on("end", () => {
      if (finished || ended) return;
      // A connection torn down also ends the stream's readable side; that is
      // a failure, and 'close' reports it.
      if (stream.destroyed || stream.session?.destroyed) return;
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
    });
    stream.on("close", () => {
      if (finished || stream !== upstream) return;
      if (ended && stream.rstCode === NGHTTP2_NO_ERROR) {
        finish(code);
        return;
      }
      if (stream.rstCode === NGHTTP2_REFUSED_STREAM || isCallNotSent(streamError)) {
        retryOrFail(n, streamError ?? new CallNotSentError("REFUSED_STREAM"), `endpoint ${sc?.key} refused the stream`);
        return;
      }
      if (ended) {
        finish(code);
        return;
      }
      // The connection going away resets its streams with CANCEL too: that is
      // the endpoint failing. A CANCEL the server sent on a live connection is
      // a cancellation (as gRPC maps RST_STREAM codes).
      const lost = stream.session === undefined || stream.session.destroyed || stream.session.closed;
      const detail = lost
        ? `connection lost${streamError ? ` (${streamError.message})` : ""}`
        : (streamError?.message ?? `stream reset with HTTP/2 code ${stream.rstCode}`);
      fail(
        stream.rstCode === NGHTTP2_CANCEL && !lost ? Code.Canceled : Code.Unavailable,
        `upstream ${sc?.key} (route ${route}) failed: ${detail}`,
      );
    });
  }

  down.body.on("data", onRequestData);
  down.body.on("end", onRequestEnd);
  down.body.pause();
  attempt(0, undefined);
}

function codeOf(protocol: CallProtocol, status: number, grpcStatus: unknown): number {
  if (grpcStatus !== undefined) return Number(grpcStatus);
  if (protocol === "connect-unary" || status !== 200) return statusCodes[status] ?? Code.Unknown;
  return okCode;
}
