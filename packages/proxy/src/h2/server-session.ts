import type * as net from "node:net";
import {
  type ConnectionRole,
  ErrorCode,
  FrameConnection,
  H2Error,
  HeaderListTooLargeError,
  SettingId,
  socketHighWater,
} from "@meshlite/transport/h2";
import type { ClientGuardLimits, ClientLimitName } from "../client-guard.js";
import { FrameDownstream, type StreamOwner, toFields } from "./frame-downstream.js";
import { readRequestHead } from "./request-headers.js";

/** Options of createServerSession. */
export interface ServerSessionOptions {
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: each request body's receive window. */
  initialWindowSize: number;
  /** The connection's receive window (opened with a WINDOW_UPDATE at start). Default: 4x initialWindowSize, at most 2^31 − 1. */
  connectionWindowSize?: number;
  /** Our SETTINGS_MAX_CONCURRENT_STREAMS; streams past it are refused (REFUSED_STREAM). */
  maxConcurrentStreams: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE; a larger request header list is reset. */
  maxHeaderListSize: number;
  /** How long the client may take to acknowledge our SETTINGS before the connection fails with SETTINGS_TIMEOUT. Default 10000 ms. */
  settingsTimeoutMs?: number;
  /** The client guard's limits (rapid reset, control frames, timeouts), as for node:http2 sessions. */
  guard: ClientGuardLimits;
  /** What is left of the handshake timeout: the first call must start within it (0: no limit). */
  firstCallWithinMs: number;
  /** The client ran into a limit. */
  onLimit(limit: ClientLimitName): void;
  /** A request: forward it. Called one I/O turn after its HEADERS, unless it was reset by then. */
  onStream(down: FrameDownstream): void;
  /** The socket closed. */
  onClose(): void;
}

/** One client HTTP/2 connection terminated by the frame engine. */
export interface ServerSession {
  /** Graceful: GOAWAY with the last stream id, close once the open streams end. */
  shutdown(): void;
  /** Closes the socket now; open calls are aborted. */
  destroy(): void;
  /** Streams open now. */
  readonly openStreams: number;
}

/** Serves HTTP/2 on `socket` (its client preface not yet read; bytes may be unshifted onto it). */
export function createServerSession(socket: net.Socket, options: ServerSessionOptions): ServerSession {
  return new Session(socket, options);
}

/** Socket bytes queued past which a control frame that asks for an answer ends the connection. */
const controlBacklog = 4 * socketHighWater;
/** Frames that do nothing (empty DATA, frames for closed streams, stream errors) a connection may send: node:http2's maxSessionInvalidFrames. */
const maxInvalidFrames = 1000;
/** Streams refused for MAX_CONCURRENT_STREAMS a connection may open: node:http2's maxSessionRejectedStreams. */
const maxRefusedStreams = 100;

class Session implements StreamOwner, ServerSession, ConnectionRole<FrameDownstream> {
  private readonly conn: FrameConnection<FrameDownstream>;
  private readonly streams: Map<number, FrameDownstream>;
  private highestId = 0;
  private totalStreams = 0;
  private pending: FrameDownstream[] = [];
  private prematureResets = 0;
  private invalidFrames = 0;
  private refusedStreams = 0;
  private controlFrames = 0;
  private controlWindowStart = performance.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly sweepTicks: number;
  private readonly sweepMs: number;

  constructor(
    private readonly socket: net.Socket,
    private readonly options: ServerSessionOptions,
  ) {
    const idleMs = options.guard.streamIdleTimeoutMs;
    this.sweepMs = Math.min(1000, Math.max(10, Math.floor(idleMs / 4)));
    this.sweepTicks = Math.ceil(idleMs / this.sweepMs) + 1;
    this.conn = new FrameConnection<FrameDownstream>(socket, this, {
      server: true,
      initialWindowSize: options.initialWindowSize,
      connectionWindowSize:
        options.connectionWindowSize ?? Math.min(2147483647, Math.max(65535, options.initialWindowSize * 4)),
      maxHeaderListSize: options.maxHeaderListSize,
      settings: [
        SettingId.MAX_CONCURRENT_STREAMS,
        options.maxConcurrentStreams,
        SettingId.INITIAL_WINDOW_SIZE,
        options.initialWindowSize,
        SettingId.MAX_HEADER_LIST_SIZE,
        options.maxHeaderListSize,
      ],
      ...(options.settingsTimeoutMs !== undefined ? { settingsTimeoutMs: options.settingsTimeoutMs } : {}),
    });
    this.streams = this.conn.streams;
    if (options.firstCallWithinMs > 0) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = undefined;
        if (this.totalStreams === 0) this.cutOff("handshake_timeout");
      }, options.firstCallWithinMs);
      this.idleTimer.unref();
    }
  }

  get openStreams() {
    return this.streams.size;
  }

  // --- reading (ConnectionRole) ----------------------------------------------

  isIdle(streamId: number): boolean {
    return streamId > this.highestId;
  }

  onRstStream() {
    const r = this.conn.reader;
    const s = this.streams.get(r.streamId);
    if (s === undefined) {
      if (r.streamId > this.highestId) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, "RST_STREAM on an idle stream");
      return;
    }
    // Reset by the client before the proxy answered: what a rapid-reset
    // attack does with every stream. A client that cancels some of its
    // calls stays far under half of its streams.
    if (!s.responded && !s.resetByProxy) {
      this.prematureResets++;
      const limit = this.options.guard.maxPrematureResets;
      if (limit > 0 && this.prematureResets >= limit && this.prematureResets * 2 > this.totalStreams) {
        this.cutOff("rapid_reset");
      }
    }
    // As node:http2's 'close': a NO_ERROR reset of a response the proxy
    // ended already is no abort (the call ends with the upstream's status).
    const abort = !s.ended || r.errorCode !== ErrorCode.NO_ERROR;
    s.localEnded = true;
    this.closeStream(s, abort);
  }

  onControlFrame() {
    const limit = this.options.guard.maxControlFramesPerSecond;
    if (limit <= 0) return;
    const now = performance.now();
    if (now - this.controlWindowStart >= 1000) {
      this.controlWindowStart = now;
      this.controlFrames = 0;
    }
    if (++this.controlFrames > limit) this.cutOff("control_flood");
    // Answers piling up unread: a client that sends PING or SETTINGS but does
    // not read would make the proxy buffer an ACK per frame. DATA never queues
    // this much in the socket (it waits for 'drain' past socketHighWater).
    else if (this.socket.writableLength > controlBacklog) this.cutOff("control_flood");
  }

  onSettings() {}

  onPingAck() {}

  onGoaway() {
    if (this.streams.size === 0) this.conn.closeWhenFlushed();
  }

  onDataFrame() {
    const r = this.conn.reader;
    const id = r.streamId;
    const n = r.length;
    const s = this.streams.get(id);
    if (s === undefined || s.remoteEnded) {
      if (s === undefined && id > this.highestId)
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, "DATA on an idle stream");
      // A closed stream (our reset may have crossed the client's DATA): the connection window still counts it.
      this.conn.dropData(id, n);
      this.countInvalidFrame();
      if (s !== undefined) throw new H2Error(ErrorCode.STREAM_CLOSED, id, "DATA after END_STREAM");
      return;
    }
    this.conn.receiveData(s.window, id, n);
    s.idleTicks = 0;
    s.received += n;
    // No stream WINDOW_UPDATE after the client's END_STREAM: set before any credit.
    if (r.endStream) s.remoteEnded = true;
    const payload = r.payload;
    // An empty DATA frame that does not end the stream does nothing: a flood of them only costs us (CVE-2019-9518).
    if (payload.length === 0 && !r.endStream) this.countInvalidFrame();
    // Padding counts as read at once: it never reaches the body.
    if (n > payload.length) this.bodyConsumed(s, n - payload.length);
    if (payload.length > 0) s.bodyData(payload);
    if (r.endStream) s.bodyEnd();
    if (s.remoteEnded && s.localEnded) this.closeStream(s, false);
  }

  onHeaders() {
    const r = this.conn.reader;
    const id = r.streamId;
    let fields: string[] | undefined;
    try {
      fields = this.conn.decoder.decode(r.payload);
    } catch (e) {
      if (!(e instanceof HeaderListTooLargeError)) throw e;
    }
    const s = this.streams.get(id);
    if (s !== undefined) {
      // Request trailers: they end the body (a proxy of gRPC calls has no use for them).
      if (s.remoteEnded) throw new H2Error(ErrorCode.STREAM_CLOSED, id, "HEADERS after END_STREAM");
      if (!r.endStream) throw new H2Error(ErrorCode.PROTOCOL_ERROR, id, "trailers without END_STREAM");
      s.remoteEnded = true;
      s.bodyEnd();
      if (s.localEnded) this.closeStream(s, false);
      return;
    }
    if (id <= this.highestId) {
      // A closed stream: decoded for the table's sake, then dropped.
      this.countInvalidFrame();
      return;
    }
    if ((id & 1) === 0) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, `client opened even stream id ${id}`);
    this.highestId = id;
    if (r.streamError) return this.rst(id, r.streamError.code);
    if (this.conn.goawaySent || this.conn.failed) return this.rst(id, ErrorCode.REFUSED_STREAM);
    if (fields === undefined) return this.rst(id, ErrorCode.ENHANCE_YOUR_CALM);
    if (this.streams.size >= this.options.maxConcurrentStreams) {
      // A client that keeps opening streams past the limit only makes us refuse them (CVE-2019-9514 and kin).
      if (++this.refusedStreams > maxRefusedStreams) this.cutOff("invalid_frames");
      return this.rst(id, ErrorCode.REFUSED_STREAM);
    }
    const head = readRequestHead(fields);
    if (typeof head === "string") {
      this.countInvalidFrame();
      return this.rst(id, ErrorCode.PROTOCOL_ERROR);
    }
    const down = new FrameDownstream(this, id, this.conn.fc.openStream(), head);
    this.streams.set(id, down);
    this.totalStreams++;
    if (this.idleTimer !== undefined) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    if (this.sweepTimer === undefined && this.options.guard.streamIdleTimeoutMs > 0) {
      this.sweepTimer = setInterval(sweep, this.sweepMs, this);
      this.sweepTimer.unref();
    }
    if (r.endStream) {
      down.remoteEnded = true;
      down.bodyEnd();
    }
    // One turn later, after the rest of what the socket delivered is read: a
    // stream the client reset in the same packets (rapid reset) is gone by
    // then and costs no upstream call.
    if (this.pending.push(down) === 1) setImmediate(startPending, this);
  }

  startPending() {
    const list = this.pending;
    this.pending = [];
    for (const s of list) {
      if (s.closed) continue;
      s.started = true;
      this.options.onStream(s);
    }
  }

  /** One sweep of the stream idle timeout: streams that moved no bytes for streamIdleTimeoutMs are cancelled. */
  sweep() {
    for (const s of this.streams.values()) {
      if (++s.idleTicks < this.sweepTicks) continue;
      this.options.onLimit("stream_idle");
      this.resetStream(s, ErrorCode.CANCEL);
    }
  }

  // --- flow control of the request body ------------------------------------

  /** Credit for bytes of the body handed to its sink, dropped, or padding. */
  bodyConsumed(s: FrameDownstream, n: number) {
    if (s.closed || this.conn.gone) return;
    s.released += n;
    if (!s.remoteEnded) this.conn.releaseStream(s.window, s.id, n);
    this.conn.releaseConnection(n);
  }

  // --- writing -------------------------------------------------------------

  sendHeaders(s: FrameDownstream, fields: string[], endStream: boolean) {
    if (s.closed || this.conn.gone) return;
    this.conn.writer.headers(s.id, this.conn.encoder.encode(fields), endStream);
    s.idleTicks = 0;
    this.conn.scheduleFlush();
    if (endStream) {
      s.localEnded = true;
      this.onLocalEnd(s);
    }
  }

  flushStream(s: FrameDownstream) {
    this.conn.flushStream(s);
  }

  onDataSent(s: FrameDownstream) {
    s.idleTicks = 0;
  }

  sendTrailers(s: FrameDownstream) {
    this.conn.writer.headers(s.id, this.conn.encoder.encode(toFields(0, s.trailers)), true);
  }

  onLocalEnd(s: FrameDownstream) {
    if (s.closed) return;
    if (s.remoteEnded) this.closeStream(s, false);
    else if (s.stopAfterEnd) this.resetStream(s, ErrorCode.NO_ERROR);
  }

  onDrained(s: FrameDownstream) {
    s.drained();
  }

  resetStream(s: FrameDownstream, code: number) {
    if (s.closed) return;
    s.resetByProxy = true;
    this.rst(s.id, code);
    const abort = code !== ErrorCode.NO_ERROR || !s.localEnded;
    s.localEnded = true;
    this.closeStream(s, abort);
  }

  private rst(id: number, code: number) {
    this.conn.writer.rstStream(id, code);
    this.conn.scheduleFlush();
  }

  private closeStream(s: FrameDownstream, abort: boolean) {
    if (s.closed) return;
    this.conn.removeStream(s, s.received - s.released);
    s.released = s.received;
    if (abort) s.aborted();
    else if (!s.remoteEnded) s.stopBody();
    if (this.streams.size === 0) this.noStreamsOpen();
  }

  private noStreamsOpen() {
    if (this.sweepTimer !== undefined) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
    }
    if (this.conn.gone) return;
    if (this.conn.goawaySent || this.conn.goawayReceived) {
      this.conn.closeWhenFlushed();
      return;
    }
    const ms = this.options.guard.clientIdleTimeoutMs;
    if (ms > 0 && this.idleTimer === undefined) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = undefined;
        if (this.streams.size > 0 || this.conn.gone || this.conn.failed) return;
        // An idle connection is not abuse: GOAWAY lets the client reconnect when it needs to.
        this.options.onLimit("idle_timeout");
        this.shutdown();
      }, ms);
      this.idleTimer.unref();
    }
  }

  // --- ending --------------------------------------------------------------

  onStreamError(e: H2Error) {
    this.countInvalidFrame();
    if (this.conn.failed) return;
    const s = this.streams.get(e.streamId);
    if (s !== undefined) this.resetStream(s, e.code);
    else this.rst(e.streamId, e.code);
  }

  onConnectionError(e: unknown) {
    const code = e instanceof H2Error ? e.code : ErrorCode.INTERNAL_ERROR;
    if (!this.conn.failed) {
      this.conn.failed = true;
      // The reader's ENHANCE_YOUR_CALM is a header block in too many (or too large) CONTINUATIONs.
      this.options.onLimit(code === ErrorCode.ENHANCE_YOUR_CALM ? "continuation_flood" : "protocol_error");
    }
    this.goaway(code, e instanceof Error ? e.message : String(e));
  }

  /**
   * A frame that did nothing or that the proxy had to refuse: node:http2
   * ends a session past 1000 of them (maxSessionInvalidFrames), and so do we.
   */
  private countInvalidFrame() {
    if (++this.invalidFrames > maxInvalidFrames) this.cutOff("invalid_frames");
  }

  /** Ends the connection at once with ENHANCE_YOUR_CALM: its calls are the abuser's own. */
  private cutOff(limit: ClientLimitName) {
    if (this.conn.failed || this.conn.gone) return;
    this.conn.failed = true;
    this.options.onLimit(limit);
    this.goaway(ErrorCode.ENHANCE_YOUR_CALM, limit);
  }

  private goaway(code: number, debug: string) {
    if (this.conn.gone) return;
    this.conn.sendGoaway(this.highestId, code, debug);
    for (const s of [...this.streams.values()]) this.closeStream(s, !s.localEnded);
    this.conn.closeWhenFlushed();
  }

  shutdown() {
    if (this.conn.gone) return;
    if (!this.conn.goawaySent) this.conn.sendGoaway(this.highestId, ErrorCode.NO_ERROR);
    if (this.streams.size === 0) this.conn.closeWhenFlushed();
  }

  destroy() {
    this.conn.destroy();
  }

  onSocketClose() {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    for (const s of [...this.streams.values()]) this.closeStream(s, !s.localEnded);
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    this.options.onClose();
  }
}

function startPending(session: Session) {
  session.startPending();
}
function sweep(session: Session) {
  session.sweep();
}
