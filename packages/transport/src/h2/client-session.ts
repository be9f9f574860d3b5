import { EventEmitter } from "node:events";
import type * as http2 from "node:http2";
import type * as net from "node:net";
import * as tls from "node:tls";
import { CallNotSentError } from "../call-not-sent-error.js";
import type { H2StreamClose } from "../h2-stream.js";
import { createResetBudget, type ResetBudget } from "../reset-budget.js";
import { type ClientPings, createClientPings } from "./client-pings.js";
import type { ClientSession, ClientSessionOptions } from "./client-session-options.js";
import { ClientStream, type ClientStreamOwner } from "./client-stream.js";
import { lostClose, normalClose, notSentClose, resetClose } from "./close-outcome.js";
import { type ConnectionRole, FrameConnection } from "./frame-connection.js";
import { maxWindowSize, SettingId } from "./frame-types.js";
import { ErrorCode, H2Error, HeaderListTooLargeError } from "./h2-error.js";
import { requestFields, sensitiveFields } from "./request-fields.js";
import { readResponseHead, readTrailers } from "./response-headers.js";

export type { ClientSession, ClientSessionOptions } from "./client-session-options.js";

/** HTTP/2 client session over `socket`, connected (ALPN h2 negotiated where TLS); the client preface goes out at once. */
export function createClientSession(socket: net.Socket | tls.TLSSocket, options: ClientSessionOptions): ClientSession {
  return new Session(socket, options);
}

/** Stream ids are 31 bits: the last one a client may open. */
const maxStreamId = maxWindowSize;
const maxConcurrentBit = 1 << SettingId.MAX_CONCURRENT_STREAMS;

class Session extends EventEmitter implements ClientSession, ClientStreamOwner, ConnectionRole<ClientStream> {
  private readonly conn: FrameConnection<ClientStream>;
  private readonly streams: Map<number, ClientStream>;
  private readonly scheme: string;
  private readonly authority: string;
  private readonly resets: ResetBudget<ClientStream>;
  private nextId = 1;
  /** Streams whose HEADERS wait for a slot under the server's SETTINGS_MAX_CONCURRENT_STREAMS, oldest first. */
  private waiting: ClientStream[] = [];
  private closeCalled = false;
  /** The lowest last-stream-id of the GOAWAYs received. */
  private goawayLastId = maxStreamId;
  private goawayCode: number = ErrorCode.NO_ERROR;
  private error: Error | undefined;
  private readonly pings: ClientPings;
  /**
   * Response bytes received and not yet taken by consumers (every stream's
   * `unreleased`), and those of them whose connection-window credit waits
   * for consumers because `maxBufferedBytes` was reached.
   */
  private unconsumed = 0;
  private connectionDebt = 0;
  private readonly maxBufferedBytes: number;
  private closeEmitted = false;
  /** Streams closed on the wire whose consumer has not taken the rest of the response yet (see ClientStream.lingers). */
  private readonly lingering = new Set<ClientStream>();
  /** The socket closed: "close" is emitted once no stream lingers. */
  private socketClosed = false;
  private destroyCalled = false;

  constructor(
    private readonly socket: net.Socket,
    options: ClientSessionOptions,
  ) {
    super();
    const initialWindowSize = options.initialWindowSize ?? 4 * 1024 * 1024;
    const maxHeaderListSize = options.maxHeaderListSize ?? 65536;
    this.scheme = options.scheme ?? (socket instanceof tls.TLSSocket ? "https" : "http");
    this.authority = options.authority;
    this.pings = createClientPings(options.maxOutstandingPings ?? 10);
    this.maxBufferedBytes = options.maxBufferedBytes ?? 64 * 1024 * 1024;
    // The coalesced writes are ours (one per I/O turn): Nagle would hold them for the peer's delayed ACK.
    socket.setNoDelay(true);
    this.conn = new FrameConnection<ClientStream>(socket, this, {
      server: false,
      initialWindowSize,
      connectionWindowSize:
        options.connectionWindowSize ?? Math.min(maxWindowSize, Math.max(65535, initialWindowSize * 4)),
      maxHeaderListSize,
      settings: [
        SettingId.ENABLE_PUSH,
        0,
        SettingId.INITIAL_WINDOW_SIZE,
        initialWindowSize,
        SettingId.MAX_HEADER_LIST_SIZE,
        maxHeaderListSize,
      ],
      ...(options.settingsTimeoutMs !== undefined ? { settingsTimeoutMs: options.settingsTimeoutMs } : {}),
    });
    this.streams = this.conn.streams;
    this.resets = createResetBudget<ClientStream>({
      isOpen: (s) => !s.closed,
      reset: (s) => this.resetStream(s, ErrorCode.CANCEL, undefined),
    });
  }

  get destroyed(): boolean {
    return this.conn.gone;
  }

  get closed(): boolean {
    return this.closeCalled || this.conn.goawaySent || this.conn.goawayReceived || this.conn.gone;
  }

  get connecting(): boolean {
    return !this.conn.peerSettingsSeen;
  }

  get openStreams(): number {
    return this.streams.size + this.waiting.length;
  }

  // --- the consumer's calls --------------------------------------------------

  request(headers: http2.OutgoingHttpHeaders, onClosed?: (connectionLost: boolean) => void): ClientStream {
    if (this.closed) {
      throw new CallNotSentError(`HTTP/2 session to ${this.authority} is ${this.destroyed ? "destroyed" : "closed"}`);
    }
    const fields = requestFields(headers, this.scheme, this.authority);
    const method = fields[1];
    const s = new ClientStream(
      this,
      fields,
      sensitiveFields(headers, fields),
      method === "GET" || method === "HEAD",
      onClosed,
    );
    if (this.waiting.length > 0 || this.streams.size >= this.conn.peer.maxConcurrentStreams) this.waiting.push(s);
    else this.start(s);
    return s;
  }

  ping(callback: (err: Error | null, durationMs: number) => void): boolean {
    if (this.conn.gone || this.conn.failed) return false;
    const payload = this.pings.start(callback);
    if (payload === undefined) return false;
    this.conn.writer.ping(payload, false);
    this.conn.scheduleFlush();
    return true;
  }

  close(): void {
    if (this.conn.gone || this.closeCalled) return;
    this.closeCalled = true;
    if (!this.conn.goawaySent) this.conn.sendGoaway(0, ErrorCode.NO_ERROR);
    this.refuseWaiting("the session closed");
    if (this.streams.size === 0) this.conn.closeWhenFlushed();
  }

  destroy(error?: Error): void {
    if (this.conn.gone) return;
    if (error !== undefined) this.error ??= error;
    this.destroyCalled = true;
    this.conn.destroy();
  }

  ref(): void {
    this.socket.ref();
  }

  unref(): void {
    this.socket.unref();
  }

  // --- streams ---------------------------------------------------------------

  /** Writes the stream's HEADERS (with END_STREAM when its request is already over) and what it queued. */
  private start(s: ClientStream) {
    if (this.nextId > maxStreamId) {
      // Out of stream ids: this connection takes no more (node:http2 makes a new session then, as the caller will).
      this.closeCalled = true;
      s.closed = true;
      s.finish(notSentClose("no stream ids left on the connection"));
      this.refuseWaiting("no stream ids left on the connection");
      return;
    }
    s.id = this.nextId;
    this.nextId += 2;
    s.window = this.conn.fc.openStream();
    this.streams.set(s.id, s);
    const endStream = s.endQueued && s.queuedBytes === 0;
    this.conn.writer.headers(s.id, this.conn.encoder.encode(s.fields!, s.neverIndexed), endStream);
    s.fields = undefined;
    s.neverIndexed = undefined;
    s.headersWrite = this.conn.writes + 1;
    this.conn.scheduleFlush();
    if (endStream) {
      s.endQueued = false;
      s.localEnded = true;
    } else if (s.queuedBytes > 0 || s.endQueued) this.conn.flushStream(s);
  }

  /** Starts waiting streams while the server's limit allows. */
  private startWaiting() {
    while (this.waiting.length > 0 && !this.closed && this.streams.size < this.conn.peer.maxConcurrentStreams) {
      this.start(this.waiting.shift()!);
    }
  }

  /** Waiting streams never reached the server: they close as not sent. */
  private refuseWaiting(why: string) {
    const list = this.waiting;
    if (list.length === 0) return;
    this.waiting = [];
    const outcome = notSentClose(why);
    for (const s of list) {
      s.closed = true;
      s.finish(outcome);
    }
  }

  flushStream(s: ClientStream) {
    if (s.id !== 0) this.conn.flushStream(s);
  }

  cancelStream(s: ClientStream, code: number) {
    if (s.id === 0) {
      // Still waiting for a slot: nothing went out.
      const i = this.waiting.indexOf(s);
      if (i >= 0) this.waiting.splice(i, 1);
      s.closed = true;
      s.finish({ rstCode: code, notSent: true, connectionLost: false });
      return;
    }
    if (s.closed) {
      // Over on the wire already (its close waits for the consumer to take the inbox): let it go.
      s.finish(normalClose, true);
      return;
    }
    const outcome: H2StreamClose = code === ErrorCode.NO_ERROR ? normalClose : resetClose(code);
    if (this.conn.gone || this.resets.take() || !this.resets.defer(s)) {
      this.resetStream(s, code, outcome);
      return;
    }
    // Past the reset budget: the request ends, the response is read and
    // dropped (the stream stays in the table), and the reset follows when
    // budget comes back if the stream is still open then. The consumer is
    // done with it now.
    s.finish(outcome);
    if (!s.localEnded) {
      s.queue.length = 0;
      s.queuedBytes = 0;
      s.queueOffset = 0;
      s.endQueued = true;
      this.conn.flushStream(s);
    }
  }

  /** RST_STREAM from our side; the consumer's close gets `outcome` (undefined: the stream was done for it already). */
  private resetStream(s: ClientStream, code: number, outcome: H2StreamClose | undefined) {
    if (s.closed) return;
    this.conn.writer.rstStream(s.id, code);
    this.conn.scheduleFlush();
    s.localEnded = true;
    this.closeStream(s, outcome ?? resetClose(code));
  }

  consumed(s: ClientStream, n: number) {
    if (s.closed || this.conn.gone) return;
    s.unreleased -= n;
    if (!s.remoteEnded) this.conn.releaseStream(s.window, s.id, n);
    const owed = this.taken(n);
    if (owed > 0) this.conn.releaseConnection(owed);
  }

  /**
   * `n` received bytes reached the session. The stream's window waits for its
   * consumer; the connection's is credited at once while the session holds
   * less than maxBufferedBytes, so one stream whose consumer stalls (a slow
   * reader behind a proxy) does not stall every other stream of the
   * connection. Past it, the credit waits for consumers too.
   */
  private arrived(n: number) {
    this.unconsumed += n;
    if (this.unconsumed <= this.maxBufferedBytes) this.conn.releaseConnection(n);
    else this.connectionDebt += n;
  }

  /** `n` held bytes were taken (or dropped with their stream): the connection credit still owed for them. */
  private taken(n: number): number {
    this.unconsumed -= n;
    const owed = Math.min(this.connectionDebt, n);
    this.connectionDebt -= owed;
    return owed;
  }

  /** The stream leaves the table; the consumer hears `outcome` (on the next tick). */
  private closeStream(s: ClientStream, outcome: H2StreamClose) {
    if (s.closed) return;
    this.conn.removeStream(s, this.taken(s.unreleased));
    s.unreleased = 0;
    s.finish(outcome);
    if (!s.done) {
      s.lingers = true;
      this.lingering.add(s);
    }
    if (this.conn.gone) return;
    this.startWaiting();
    if (this.streams.size === 0 && this.waiting.length === 0 && this.closed) this.conn.closeWhenFlushed();
  }

  // --- reading (ConnectionRole) ----------------------------------------------

  isIdle(streamId: number): boolean {
    // Even ids are the server's, which it cannot open (push is off).
    return (streamId & 1) === 0 || streamId >= this.nextId;
  }

  onDataFrame() {
    const r = this.conn.reader;
    const id = r.streamId;
    const n = r.length;
    const s = this.streams.get(id);
    if (s === undefined || s.remoteEnded) {
      if (s === undefined && this.isIdle(id)) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, "DATA on an idle stream");
      // A closed stream (our reset may have crossed the server's DATA): the connection window still counts it.
      this.conn.dropData(id, n);
      if (s !== undefined) throw new H2Error(ErrorCode.STREAM_CLOSED, id, "DATA after END_STREAM");
      return;
    }
    this.conn.receiveData(s.window, id, n);
    const payload = r.payload;
    if (!s.responded && !s.done) {
      this.conn.releaseConnection(n);
      throw new H2Error(ErrorCode.PROTOCOL_ERROR, id, "DATA before the response's HEADERS");
    }
    if (r.endStream) s.remoteEnded = true;
    // Padding counts as read at once.
    const padding = n - payload.length;
    if (padding > 0) {
      if (!s.remoteEnded) this.conn.releaseStream(s.window, id, padding);
      this.conn.releaseConnection(padding);
    }
    s.unreleased += payload.length;
    this.arrived(payload.length);
    if (s.done) {
      // Cancelled past the reset budget: read and dropped, credited at once.
      this.consumed(s, payload.length);
    } else {
      if (payload.length > 0) s.data(payload);
      if (r.endStream && !s.done) s.ended(undefined);
    }
    if (s.remoteEnded && s.localEnded) this.closeStream(s, normalClose);
  }

  onHeaders() {
    const r = this.conn.reader;
    const id = r.streamId;
    let fields: string[] | undefined;
    let tooLarge: HeaderListTooLargeError | undefined;
    try {
      fields = this.conn.decoder.decode(r.payload);
    } catch (e) {
      if (!(e instanceof HeaderListTooLargeError)) throw e;
      tooLarge = e;
    }
    const s = this.streams.get(id);
    if (s === undefined) {
      if (this.isIdle(id)) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, `HEADERS on idle stream ${id}`);
      return; // a closed stream: decoded for the table's sake, then dropped
    }
    if (r.streamError) throw r.streamError;
    if (s.remoteEnded) throw new H2Error(ErrorCode.STREAM_CLOSED, id, "HEADERS after END_STREAM");
    if (fields === undefined) throw new H2Error(ErrorCode.ENHANCE_YOUR_CALM, id, `response ${tooLarge!.message}`);
    if (s.done) {
      // Cancelled past the reset budget: dropped.
      if (r.endStream) s.remoteEnded = true;
    } else if (!s.responded) {
      const headers = readResponseHead(fields);
      if (typeof headers === "string")
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, id, `malformed response: ${headers}`);
      const status = headers[":status"] as unknown as number; // a number, as node:http2 gives it
      if (status < 200) {
        // Informational (1xx): skipped; the final response follows. 101 has no place in HTTP/2.
        if (r.endStream || status === 101)
          throw new H2Error(ErrorCode.PROTOCOL_ERROR, id, `informational response ${status} ends the stream`);
        return;
      }
      s.responded = true;
      if (r.endStream) s.remoteEnded = true;
      s.response(headers, r.endStream);
    } else {
      if (!r.endStream) throw new H2Error(ErrorCode.PROTOCOL_ERROR, id, "trailers without END_STREAM");
      const trailers = readTrailers(fields);
      if (typeof trailers === "string")
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, id, `malformed trailers: ${trailers}`);
      s.remoteEnded = true;
      s.ended(trailers);
    }
    if (s.remoteEnded && s.localEnded) this.closeStream(s, normalClose);
  }

  onRstStream() {
    const r = this.conn.reader;
    const s = this.streams.get(r.streamId);
    if (s === undefined) {
      if (this.isIdle(r.streamId)) throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, "RST_STREAM on an idle stream");
      return;
    }
    const code = r.errorCode;
    s.localEnded = true;
    if (code === ErrorCode.REFUSED_STREAM) {
      this.closeStream(s, notSentClose(`the server refused stream ${s.id} (REFUSED_STREAM)`));
    } else if (code === ErrorCode.NO_ERROR && s.remoteEnded) {
      // The response is complete: the server needs no more of the request (RFC 9113 section 8.1).
      this.closeStream(s, normalClose);
    } else {
      this.closeStream(s, resetClose(code, new Error(`stream ${s.id} reset by the server with HTTP/2 code ${code}`)));
    }
  }

  onControlFrame() {}

  onSettings(changes: number) {
    if (changes & maxConcurrentBit) this.startWaiting();
    const p = this.conn.peer;
    const settings: http2.Settings = {
      headerTableSize: p.headerTableSize,
      enablePush: p.enablePush,
      initialWindowSize: p.initialWindowSize,
      maxFrameSize: p.maxFrameSize,
      enableConnectProtocol: p.enableConnectProtocol,
    };
    if (Number.isFinite(p.maxConcurrentStreams)) settings.maxConcurrentStreams = p.maxConcurrentStreams;
    if (Number.isFinite(p.maxHeaderListSize)) settings.maxHeaderListSize = p.maxHeaderListSize;
    this.emit("remoteSettings", settings);
  }

  onPingAck(payload: Buffer) {
    this.pings.acked(payload);
  }

  onGoaway(lastStreamId: number, errorCode: number) {
    this.goawayLastId = Math.min(this.goawayLastId, lastStreamId);
    if (errorCode !== ErrorCode.NO_ERROR) this.goawayCode = errorCode;
    // Streams above the last id were not processed, and never will be.
    for (const s of [...this.streams.values()]) {
      if (s.id > this.goawayLastId) {
        this.closeStream(s, notSentClose(`stream ${s.id} is above the server's GOAWAY (last stream ${lastStreamId})`));
      }
    }
    this.refuseWaiting("the server sent GOAWAY");
    this.emit("goaway", errorCode, lastStreamId);
    if (this.conn.gone) return;
    if (errorCode !== ErrorCode.NO_ERROR) {
      // As node:http2: a GOAWAY with an error ends the session now.
      this.destroy(new Error(`the server sent GOAWAY with HTTP/2 code ${errorCode}`));
    } else if (this.streams.size === 0) this.conn.closeWhenFlushed();
  }

  onStreamError(e: H2Error) {
    const s = this.streams.get(e.streamId);
    if (s === undefined) {
      // A stream of ours that closed (never one we did not open: RST_STREAM on an idle stream is an error).
      if (this.isIdle(e.streamId)) return;
      this.conn.writer.rstStream(e.streamId, e.code);
      this.conn.scheduleFlush();
      return;
    }
    this.resetStream(s, e.code, resetClose(e.code, e));
  }

  onConnectionError(e: unknown) {
    if (this.conn.failed || this.conn.gone) return;
    this.conn.failed = true;
    const error = e instanceof Error ? e : new Error(String(e));
    this.error ??= error;
    const code = e instanceof H2Error ? e.code : ErrorCode.INTERNAL_ERROR;
    // Frames not yet written never will be: the streams whose HEADERS are among them close as not sent.
    this.conn.writer.take();
    this.conn.sendGoaway(0, code, error.message);
    this.closeAll(error);
    this.conn.closeWhenFlushed();
  }

  onDataSent() {}

  sendTrailers() {}

  onLocalEnd(s: ClientStream) {
    if (s.remoteEnded && !s.closed) this.closeStream(s, normalClose);
  }

  onDrained(s: ClientStream) {
    s.drained();
  }

  onSocketClose(error: Error | undefined) {
    if (error !== undefined) this.error ??= error;
    this.closeAll(this.error);
    this.socketClosed = true;
    if (this.lingering.size > 0 && (this.destroyCalled || this.error !== undefined)) {
      // Destroyed: what the consumers have not taken yet is dropped.
      const lost = lostClose(ErrorCode.CANCEL, this.error);
      for (const s of [...this.lingering]) s.finish(lost, true);
    }
    if (this.lingering.size === 0) process.nextTick(emitClose, this);
  }

  lingerOver(s: ClientStream) {
    this.lingering.delete(s);
    if (this.socketClosed && this.lingering.size === 0) process.nextTick(emitClose, this);
  }

  /** The connection is over under its streams: each closes as lost, or as not sent if its HEADERS never left. */
  private closeAll(cause: Error | undefined) {
    this.refuseWaiting("the connection closed");
    if (this.streams.size === 0) return;
    const lostCode = this.goawayCode !== ErrorCode.NO_ERROR ? this.goawayCode : ErrorCode.CANCEL;
    let lost: H2StreamClose | undefined;
    let unsent: H2StreamClose | undefined;
    for (const s of [...this.streams.values()]) {
      if (s.headersWrite > this.conn.writes) {
        unsent ??= notSentClose(`the connection closed before stream ${s.id} was sent`, cause);
        this.closeStream(s, unsent);
      } else {
        lost ??= lostClose(lostCode, cause);
        this.closeStream(s, lost);
      }
    }
  }

  /** The session's last events, a tick after its socket closed (after its streams' close). */
  emitClose() {
    if (this.closeEmitted) return;
    this.closeEmitted = true;
    this.pings.failAll(new Error("the HTTP/2 session closed before the PING was answered"));
    if (this.error !== undefined) this.emit("error", this.error);
    this.emit("close");
  }
}

function emitClose(session: Session) {
  session.emitClose();
}
