import type * as net from "node:net";
import { createFlowControl, type FlowControl, type FlowWindow } from "./flow-control.js";
import { createFrameReader, type FrameReader } from "./frame-reader.js";
import { FrameType, SettingId } from "./frame-types.js";
import { createFrameWriter, type FrameWriter } from "./frame-writer.js";
import { ErrorCode, H2Error } from "./h2-error.js";
import { createHpackDecoder, type HpackDecoder } from "./hpack-decoder.js";
import { createHpackEncoder, type HpackEncoder } from "./hpack-encoder.js";
import { applySettings, initialSettings, type Settings, type SettingsChanges } from "./settings.js";

/**
 * The send state of one stream, kept on the role's own stream object (a
 * FrameDownstream or a ClientStream): the connection sends its queued DATA
 * within the windows and ends it, without knowing which role it is.
 */
export interface SendingStream {
  readonly id: number;
  readonly window: FlowWindow;
  /** We sent END_STREAM or RST_STREAM. */
  localEnded: boolean;
  /** Gone from the stream table (closed or reset either way). */
  closed: boolean;
  /** DATA waiting to go out, oldest first; queue[0] from queueOffset. */
  readonly queue: Buffer[];
  queueOffset: number;
  queuedBytes: number;
  /** END_STREAM goes out once the queue is sent. */
  endQueued: boolean;
  /** END_STREAM rides on trailers (ConnectionRole.sendTrailers), not on the last DATA frame. */
  readonly wantsTrailers: boolean;
  /** In the connection's list of streams waiting for a window or the socket. */
  blocked: boolean;
}

/**
 * What the connection asks of its role (server-session.ts, client-session.ts):
 * the frames and events whose handling differs between a server and a client.
 * The role reads the current frame from `connection.reader`.
 */
export interface ConnectionRole<S extends SendingStream> {
  onDataFrame(): void;
  onHeaders(): void;
  onRstStream(): void;
  /** A frame for a stream id not in the table: whether that stream is idle (never opened), a PROTOCOL_ERROR. */
  isIdle(streamId: number): boolean;
  /** A SETTINGS or PING that asks for an answer came (before it is answered). */
  onControlFrame(): void;
  /** The peer's SETTINGS were applied and acknowledged; `changes` as applySettings returns them. */
  onSettings(changes: SettingsChanges): void;
  onPingAck(payload: Buffer): void;
  /** A GOAWAY came (`connection.goawayReceived` is set). */
  onGoaway(lastStreamId: number, errorCode: number): void;
  /** The peer broke a rule of one stream: reset it (RST_STREAM with e.code); the connection goes on. */
  onStreamError(e: H2Error): void;
  /** The peer broke a rule of the connection (or handling a frame threw): send GOAWAY and close. */
  onConnectionError(e: unknown): void;
  /** A DATA frame of the stream was written. */
  onDataSent(stream: S): void;
  /** The stream's queue is out and its END_STREAM rides on trailers: write them. */
  sendTrailers(stream: S): void;
  /** A flush of the stream found it ended on our side (END_STREAM written, now or before). */
  onLocalEnd(stream: S): void;
  /** A flush of the stream is done (its queue may be empty now). */
  onDrained(stream: S): void;
  /** The socket closed (or was destroyed); `error` is the socket's, if it failed. */
  onSocketClose(error: Error | undefined): void;
}

/** Options of FrameConnection. */
export interface FrameConnectionOptions {
  /** We are the server: the client's connection preface comes first. Else we send it, and the server's SETTINGS must be its first frame. */
  server: boolean;
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: each stream's receive window. */
  initialWindowSize: number;
  /** The connection's receive window, opened with a WINDOW_UPDATE at start. */
  connectionWindowSize: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE: the HPACK decoder's limit; header blocks larger than it (or 16 KiB) are a flood. */
  maxHeaderListSize: number;
  /** Our SETTINGS, [id, value, ...], sent at start. */
  settings: readonly number[];
  /**
   * How long the peer may take to acknowledge our SETTINGS: past it the
   * connection fails with SETTINGS_TIMEOUT (RFC 9113 section 6.5.3), so a
   * peer that reads nothing cannot hold it open. Default 10000 ms.
   */
  settingsTimeoutMs?: number;
}

const empty = Buffer.alloc(0);
/** Socket bytes queued past which DATA waits for 'drain' (and frames are written before the turn ends). */
export const socketHighWater = 256 * 1024;
const initialWindowBit = 1 << SettingId.INITIAL_WINDOW_SIZE;
const headerTableBit = 1 << SettingId.HEADER_TABLE_SIZE;

/**
 * One HTTP/2 connection's frame machinery, the same for the server role
 * (client connections to the proxy) and the client role (connections to
 * endpoints, the channel's and the proxy's): frames in (reader, HPACK decoder) and out (one
 * frame writer, written with one socket write per I/O turn, or earlier past
 * socketHighWater), the stream table, flow control with per-stream send
 * queues (streams blocked on a window or on the socket are flushed again on
 * WINDOW_UPDATE, a SETTINGS change or 'drain'), SETTINGS applied and ACKed,
 * PINGs answered, WINDOW_UPDATEs credited, GOAWAY sent and received, and the
 * socket's end. What differs between the roles goes to the ConnectionRole.
 */
export class FrameConnection<S extends SendingStream> {
  readonly reader: FrameReader;
  readonly writer: FrameWriter = createFrameWriter();
  readonly decoder: HpackDecoder;
  readonly encoder: HpackEncoder = createHpackEncoder();
  readonly fc: FlowControl;
  /** The peer's SETTINGS. */
  readonly peer: Settings = initialSettings();
  /** Open streams by id. */
  readonly streams = new Map<number, S>();
  /** The peer's first SETTINGS came. */
  peerSettingsSeen = false;
  goawaySent = false;
  goawayReceived = false;
  /** A connection error or a limit ended the connection: nothing more is read. */
  failed = false;
  /** The socket closed or was destroyed: nothing more is read or written. */
  gone = false;
  /** Socket writes so far: frames appended now go out in write number `writes + 1`. */
  writes = 0;
  private closing = false;
  private flushScheduled = false;
  private socketBlocked = false;
  private blocked: S[] = [];
  private socketError: Error | undefined;
  private settingsTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: net.Socket,
    private readonly role: ConnectionRole<S>,
    private readonly options: FrameConnectionOptions,
  ) {
    // CONTINUATION floods: a block is never larger than the header list we accept.
    this.reader = createFrameReader({
      preface: options.server,
      maxBlockSize: Math.max(options.maxHeaderListSize, 16384),
    });
    this.decoder = createHpackDecoder({ maxHeaderListSize: options.maxHeaderListSize });
    this.fc = createFlowControl({
      initialWindowSize: options.initialWindowSize,
      connectionWindowSize: options.connectionWindowSize,
    });
    if (!options.server) this.writer.preface();
    this.writer.settings(options.settings);
    // From when the socket is connected: a slow dial is the connect timeout's to judge.
    if (socket.connecting) socket.once("connect", () => this.startSettingsTimer());
    else this.startSettingsTimer();
    if (this.fc.initialConnectionIncrement > 0) this.writer.windowUpdate(0, this.fc.initialConnectionIncrement);
    this.scheduleFlush();
    socket.on("data", (chunk: Buffer) => this.onData(chunk));
    socket.on("drain", () => {
      this.socketBlocked = false;
      this.flushBlocked();
    });
    socket.on("close", () => this.onSocketClose());
    // 'close' follows; the role hears of the error then.
    socket.on("error", (e: Error) => {
      this.socketError ??= e;
    });
    socket.resume();
  }

  // --- reading -------------------------------------------------------------

  private onData(chunk: Buffer) {
    if (this.gone || this.failed) return;
    this.reader.push(chunk);
    for (;;) {
      try {
        for (let type = this.reader.next(); type !== -1; type = this.reader.next()) {
          this.onFrame(type);
          if (this.gone || this.failed) return;
        }
        return;
      } catch (e) {
        if (e instanceof H2Error && !e.isConnectionError) {
          this.role.onStreamError(e);
          if (this.gone || this.failed) return;
          continue;
        }
        this.role.onConnectionError(e);
        return;
      }
    }
  }

  private onFrame(type: number) {
    const r = this.reader;
    if (!this.peerSettingsSeen && !this.options.server && (type !== FrameType.SETTINGS || r.ack)) {
      // RFC 9113 section 3.4: the server's preface is a SETTINGS frame.
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, `frame of type ${type} before the server's SETTINGS`);
    }
    switch (type) {
      case FrameType.DATA:
        return this.role.onDataFrame();
      case FrameType.HEADERS:
        return this.role.onHeaders();
      case FrameType.RST_STREAM:
        return this.role.onRstStream();
      case FrameType.SETTINGS: {
        if (r.ack) {
          clearTimeout(this.settingsTimer);
          return;
        }
        this.role.onControlFrame();
        const changes = applySettings(r.payload, this.peer);
        if (changes & initialWindowBit) {
          const windows = [];
          for (const s of this.streams.values()) windows.push(s.window);
          this.fc.setPeerInitialWindowSize(this.peer.initialWindowSize, windows);
        }
        if (changes & headerTableBit) this.encoder.setPeerMaxTableSize(this.peer.headerTableSize);
        this.writer.maxFrameSize = this.peer.maxFrameSize;
        this.writer.settingsAck();
        this.scheduleFlush();
        this.peerSettingsSeen = true;
        if (changes & initialWindowBit) this.flushAll();
        this.role.onSettings(changes);
        return;
      }
      case FrameType.PING:
        if (r.ack) return this.role.onPingAck(r.payload);
        this.role.onControlFrame();
        this.writer.ping(r.payload, true);
        this.scheduleFlush();
        return;
      case FrameType.GOAWAY:
        this.goawayReceived = true;
        return this.role.onGoaway(r.lastStreamId, r.errorCode);
      case FrameType.WINDOW_UPDATE: {
        if (r.streamId === 0) {
          this.fc.credit(undefined, 0, r.windowIncrement);
          this.flushBlocked();
          return;
        }
        const s = this.streams.get(r.streamId);
        if (s === undefined) {
          if (this.role.isIdle(r.streamId))
            throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, "WINDOW_UPDATE on an idle stream");
          return;
        }
        this.fc.credit(s.window, s.id, r.windowIncrement);
        this.flushStream(s);
        return;
      }
    }
  }

  /**
   * DATA of `n` bytes (padding included) for an open stream, counted against
   * its window and the connection's. Past the stream's window it throws the
   * stream error, and the connection window gets the bytes back at once (the
   * stream is reset, nobody reads them).
   */
  receiveData(window: FlowWindow, streamId: number, n: number) {
    try {
      this.fc.received(window, streamId, n);
    } catch (e) {
      if (e instanceof H2Error && !e.isConnectionError) this.releaseConnection(n);
      throw e;
    }
  }

  /**
   * A stream leaves the table: what it still had to send is dropped, and the
   * `unread` bytes it received and nobody took go back to the connection
   * window (they were counted against it, and no reader will release them).
   */
  removeStream(s: S, unread: number) {
    s.closed = true;
    this.streams.delete(s.id);
    s.queue.length = 0;
    s.queuedBytes = 0;
    if (unread > 0 && !this.gone) this.releaseConnection(unread);
  }

  /** DATA for a stream that is closed or unknown: the connection window still counts it, and gets it back at once. */
  dropData(streamId: number, n: number) {
    this.fc.received(undefined, streamId, n);
    this.releaseConnection(n);
  }

  // --- flow control of what we receive --------------------------------------

  /** The reader is done with `n` bytes of the stream: WINDOW_UPDATE for the stream (by the half-window policy). */
  releaseStream(window: FlowWindow, streamId: number, n: number) {
    const increment = this.fc.releaseStream(window, n);
    if (increment > 0) {
      this.writer.windowUpdate(streamId, increment);
      this.scheduleFlush();
    }
  }

  /** The same for the connection window. */
  releaseConnection(n: number) {
    const increment = this.fc.releaseConnection(n);
    if (increment > 0) {
      this.writer.windowUpdate(0, increment);
      this.scheduleFlush();
    }
  }

  // --- writing -------------------------------------------------------------

  /** Sends what the stream has queued, as far as the windows and the socket allow; the rest waits. */
  flushStream(s: S) {
    if (s.closed || this.gone) {
      s.queue.length = 0;
      s.queuedBytes = 0;
      return;
    }
    while (s.queuedBytes > 0) {
      const n = this.socketBlocked ? 0 : this.fc.sendable(s.window);
      if (n <= 0) {
        if (!s.blocked) {
          s.blocked = true;
          this.blocked.push(s);
        }
        this.scheduleFlush(); // what went out before the window closed
        return;
      }
      const chunk = s.queue[0]!;
      const from = s.queueOffset;
      const take = Math.min(n, chunk.length - from);
      const part = from === 0 && take === chunk.length ? chunk : chunk.subarray(from, from + take);
      s.queueOffset += take;
      s.queuedBytes -= take;
      if (s.queueOffset === chunk.length) {
        s.queue.shift();
        s.queueOffset = 0;
      }
      const endNow = s.queuedBytes === 0 && s.endQueued && !s.wantsTrailers;
      this.writer.data(s.id, part, endNow);
      this.fc.sent(s.window, take);
      this.role.onDataSent(s);
      if (endNow) {
        s.endQueued = false;
        s.localEnded = true;
      }
      if (this.socket.writableLength + this.writer.pending > socketHighWater) this.flushSocket();
    }
    this.scheduleFlush();
    if (s.endQueued) {
      s.endQueued = false;
      if (s.wantsTrailers) this.role.sendTrailers(s);
      else this.writer.data(s.id, empty, true);
      s.localEnded = true;
    }
    if (s.localEnded) this.role.onLocalEnd(s);
    this.role.onDrained(s);
  }

  private flushBlocked() {
    const list = this.blocked;
    if (list.length === 0) return;
    this.blocked = [];
    for (const s of list) {
      s.blocked = false;
      this.flushStream(s);
    }
  }

  private flushAll() {
    for (const s of this.streams.values()) if (s.queuedBytes > 0) this.flushStream(s);
  }

  /** Writes what was appended, in one socket write, before this I/O turn ends. */
  scheduleFlush() {
    if (this.flushScheduled || this.gone) return;
    this.flushScheduled = true;
    setImmediate(flushLater, this);
  }

  /** Writes what the frames appended since the last write add up to, in one socket write. */
  flushSocket() {
    this.flushScheduled = false;
    if (this.gone) return;
    const out = this.writer.take();
    if (out !== undefined) {
      this.writes++;
      this.socket.write(out);
      if (this.socket.writableLength > socketHighWater) this.socketBlocked = true;
    }
    if (this.closing) this.socket.destroySoon();
  }

  // --- ending --------------------------------------------------------------

  /** Appends GOAWAY (written this turn); no stream of the peer's above `lastStreamId` will be processed. */
  sendGoaway(lastStreamId: number, code: number, debug?: string) {
    this.writer.goaway(
      lastStreamId,
      code,
      debug === undefined ? undefined : Buffer.from(debug.slice(0, 200), "latin1"),
    );
    this.goawaySent = true;
    this.scheduleFlush();
  }

  /** Ends the socket once what was appended is written. */
  closeWhenFlushed() {
    this.closing = true;
    this.flushScheduled = false;
    this.scheduleFlush();
  }

  /** Destroys the socket now; the role hears onSocketClose at once. */
  destroy() {
    if (this.gone) return;
    this.socket.destroy();
    this.onSocketClose();
  }

  private startSettingsTimer() {
    if (this.gone) return;
    const ms = this.options.settingsTimeoutMs ?? 10_000;
    // Unref'd: a connection the user let go of (unref) must not be held by it.
    this.settingsTimer = setTimeout(settingsTimedOut, ms, this, ms).unref();
  }

  /** Our SETTINGS went unacknowledged for `ms`: a connection error. */
  settingsTimedOut(ms: number) {
    if (this.gone || this.failed) return;
    this.role.onConnectionError(
      new H2Error(ErrorCode.SETTINGS_TIMEOUT, 0, `the peer did not acknowledge our SETTINGS within ${ms} ms`),
    );
  }

  private onSocketClose() {
    if (this.gone) return;
    this.gone = true;
    clearTimeout(this.settingsTimer);
    this.blocked = [];
    this.role.onSocketClose(this.socketError);
  }
}

function settingsTimedOut(connection: FrameConnection<SendingStream>, ms: number) {
  connection.settingsTimedOut(ms);
}

function flushLater(connection: FrameConnection<SendingStream>) {
  connection.flushSocket();
}
