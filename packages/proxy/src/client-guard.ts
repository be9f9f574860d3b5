import * as http2 from "node:http2";

/** What a client connection ran into, as counted on `/metrics` (`meshlite_proxy_client_limited_total`). */
export type ClientLimitName =
  /** Reset too many of its streams before their response started (HTTP/2 rapid reset, CVE-2023-44487). */
  | "rapid_reset"
  /** Sent PING or SETTINGS frames faster than `maxControlFramesPerSecond`, or faster than it read the answers. */
  | "control_flood"
  /** A header block in more CONTINUATION frames than node:http2 accepts (CVE-2024-27316 and kin). */
  | "continuation_flood"
  /**
   * Frame engine: more than 1000 frames that do nothing (empty DATA, frames for closed streams, stream
   * errors) or more than 100 streams refused for MAX_CONCURRENT_STREAMS (node:http2's
   * maxSessionInvalidFrames and maxSessionRejectedStreams, which end such a session on the streams
   * engine).
   */
  | "invalid_frames"
  /** A connection from an address cut off for abuse (the four above) within `abusePenaltyMs`: closed at accept. */
  | "abuse_penalty"
  /** Any other HTTP/2 protocol error that ended the connection. */
  | "protocol_error"
  /** No call started within `handshakeTimeoutMs` of connecting (slowloris). */
  | "handshake_timeout"
  /** No call open for `clientIdleTimeoutMs`: the connection was closed with GOAWAY. */
  | "idle_timeout"
  /** A call moved no bytes either way for `streamIdleTimeoutMs` and was cancelled. */
  | "stream_idle"
  /** Request headers over `maxHeaderBytes`. */
  | "header_bytes"
  /** More request header fields than `maxHeaderPairs`. */
  | "header_pairs"
  /** A message over `maxMessageBytes`. */
  | "message_bytes"
  /** A call over `maxInFlight`. */
  | "in_flight";

/** The per-connection limits the guard enforces (see ProxyOptions for each field's meaning). */
export interface ClientGuardLimits {
  readonly maxPrematureResets: number;
  readonly maxControlFramesPerSecond: number;
  readonly handshakeTimeoutMs: number;
  readonly clientIdleTimeoutMs: number;
  readonly streamIdleTimeoutMs: number;
}

/** What the listener asks of a guarded connection. */
export interface ClientGuard {
  /** The connection was cut off: streams it still opens are refused, not forwarded. */
  readonly cutOff: boolean;
}

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_CANCEL } = http2.constants;

// Streams the proxy reset itself: node:http2 reports them as 'aborted' too,
// and they are not the client's resets.
const resetByProxy = new WeakSet<http2.ServerHttp2Stream>();

/** Resets a client's stream from the proxy's side (not counted as the client's reset). */
export function resetClientStream(stream: http2.ServerHttp2Stream, code: number): void {
  if (stream.destroyed) return;
  resetByProxy.add(stream);
  stream.close(code);
}

/**
 * Watches one client HTTP/2 connection and ends it when it abuses the proxy:
 * resets most of its streams before they are answered, floods control
 * frames, or holds the connection (or a call) without using it. What the
 * client did is reported through `onLimit`, once per connection for the
 * limits that end it.
 *
 * `firstCallWithinMs`: what is left of the handshake timeout when the
 * session starts (the TLS handshake and the preface took the rest); 0 for none.
 */
export function guardClientSession(
  session: http2.ServerHttp2Session,
  limits: ClientGuardLimits,
  firstCallWithinMs: number,
  onLimit: (limit: ClientLimitName) => void,
): ClientGuard {
  let streams = 0;
  let open = 0;
  let prematureResets = 0;
  let controlFrames = 0;
  let controlWindowStart = performance.now();
  let idleTimer: NodeJS.Timeout | undefined;
  let ended = false;

  /** Ends the connection at once with ENHANCE_YOUR_CALM: its calls are the abuser's own. */
  function cutOff(limit: ClientLimitName) {
    if (ended) return;
    ended = true;
    onLimit(limit);
    if (session.destroyed) return;
    // destroy(error, code) sends NO_ERROR; a GOAWAY of its own says why.
    session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
    setImmediate(() => session.destroy());
  }

  function armIdle(ms: number, limit: "handshake_timeout" | "idle_timeout") {
    if (ms <= 0 || ended) return;
    idleTimer = setTimeout(() => {
      idleTimer = undefined;
      if (open > 0 || session.destroyed) return;
      if (limit === "handshake_timeout") {
        cutOff(limit);
        return;
      }
      // An idle connection is not abuse: GOAWAY lets the client reconnect when it needs to.
      ended = true;
      onLimit(limit);
      session.close();
    }, ms);
    idleTimer.unref();
  }

  function countControlFrame() {
    const limit = limits.maxControlFramesPerSecond;
    if (limit <= 0) return;
    const now = performance.now();
    if (now - controlWindowStart >= 1000) {
      controlWindowStart = now;
      controlFrames = 0;
    }
    if (++controlFrames > limit) cutOff("control_flood");
  }

  session.on("ping", countControlFrame);
  session.on("remoteSettings", countControlFrame);
  session.on("error", (e: Error) => {
    // node:http2 (nghttp2) ends the session itself on these; they are counted here.
    if (ended) return;
    ended = true;
    if (/CONTINUATION/i.test(e.message)) onLimit("continuation_flood");
    else if (/flood/i.test(e.message)) onLimit("control_flood");
    else onLimit("protocol_error");
  });
  session.on("close", () => {
    if (idleTimer) clearTimeout(idleTimer);
  });

  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    streams++;
    open++;
    if (idleTimer) {
      clearTimeout(idleTimer);
      idleTimer = undefined;
    }
    stream.on("aborted", () => {
      // Reset by the client before the proxy answered: what a rapid-reset
      // attack does with every stream. A client that cancels some of its
      // calls stays far under half of its streams.
      // Streams that end with their connection (the client went away, or the
      // proxy cut it off) were not reset one by one.
      if (stream.headersSent || resetByProxy.has(stream) || session.destroyed || session.closed) return;
      prematureResets++;
      const limit = limits.maxPrematureResets;
      if (limit > 0 && prematureResets >= limit && prematureResets * 2 > streams) cutOff("rapid_reset");
    });
    stream.on("close", () => {
      open--;
      if (open === 0) armIdle(limits.clientIdleTimeoutMs, "idle_timeout");
    });
    if (limits.streamIdleTimeoutMs > 0) {
      stream.setTimeout(limits.streamIdleTimeoutMs, () => {
        if (stream.destroyed) return;
        onLimit("stream_idle");
        resetClientStream(stream, NGHTTP2_CANCEL);
      });
    }
  });

  armIdle(firstCallWithinMs, "handshake_timeout");
  return {
    get cutOff() {
      return ended && !session.closed;
    },
  };
}
