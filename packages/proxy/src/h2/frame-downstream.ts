import type * as http from "node:http";
import type * as http2 from "node:http2";
import { ErrorCode, type FlowWindow } from "@meshlite/transport/h2";
import type { Downstream } from "../downstream.js";
import type { BodySink, RequestBody } from "../request-body.js";
import type { RequestHead } from "./request-headers.js";

/** What a FrameDownstream asks of the server session that owns its stream. */
export interface StreamOwner {
  /** Sends a HEADERS block (response headers or trailers). */
  sendHeaders(stream: FrameDownstream, fields: string[], endStream: boolean): void;
  /** Sends what the stream has queued, as far as the windows and the socket allow. */
  flushStream(stream: FrameDownstream): void;
  /** RST_STREAM from the proxy's side (not the client's reset). */
  resetStream(stream: FrameDownstream, code: number): void;
  /** `n` bytes of the request body were handed to the sink or dropped: credit them back to the client. */
  bodyConsumed(stream: FrameDownstream, n: number): void;
}

/**
 * One client stream of the frame engine, the Downstream of its call (see
 * downstream.ts for the contract) and its request body (RequestBody, see
 * request-body.ts). A class: one is made per call. The session keeps the
 * HTTP/2 state here too (windows, what was sent and received), so a call
 * costs this one object: no Readable, no EventEmitter.
 *
 * The body: the session hands it DATA payloads (`bodyData`) and the end
 * (`bodyEnd`). While the sink flows they go to it at once, from the socket's
 * read; before `deliverTo`, while paused, or behind what waits already, they
 * wait here, uncredited: the client's windows get bytes back only once they
 * are handed to the sink (or discarded). `resume()` delivers what waits on
 * the next tick (process.nextTick, as a Readable's resume(): a unary call's
 * chunk and end reach the upstream stream within the I/O turn its HEADERS
 * go out in, so all three leave in one socket write).
 */
export class FrameDownstream implements Downstream, RequestBody {
  readonly method: string;
  readonly path: string;
  readonly authority: string | undefined;
  readonly headers: http.IncomingHttpHeaders;
  readonly headerBytes: number;
  readonly headerPairs: number;
  readonly http1 = false;

  // --- HTTP/2 state, kept by the session ---
  /** The client sent END_STREAM (half-closed remote). */
  remoteEnded = false;
  /** We sent END_STREAM or RST_STREAM. */
  localEnded = false;
  /** Gone from the stream table (closed or reset either way). */
  closed = false;
  /** The proxy reset it (not counted as the client's reset). */
  resetByProxy = false;
  /** Flow-controlled bytes of DATA received (padding included). */
  received = 0;
  /** Of those, bytes handed back to the client's windows (padding, delivered, discarded; the rest at close). */
  released = 0;
  /** Idle sweeps since bytes last moved (stream idle timeout). */
  idleTicks = 0;
  /** Taken up by the proxy (the call started). */
  started = false;

  // --- the response ---
  responded = false;
  /** end() was called, or respond() ended the stream. */
  ended = false;
  wantsTrailers = false;
  /** END_STREAM (with trailers, if asked for) goes out once the queue is sent. */
  endQueued = false;
  trailers: http2.OutgoingHttpHeaders | undefined;
  /** RST_STREAM NO_ERROR after the response's last frame. */
  stopAfterEnd = false;
  readonly queue: Buffer[] = [];
  /** Offset into queue[0] of what is not yet sent. */
  queueOffset = 0;
  queuedBytes = 0;
  /** In the session's list of streams waiting for a window. */
  blocked = false;
  private drainListeners: Array<() => void> | undefined;
  private abortListeners: Array<() => void> | undefined;

  // --- the request body ---
  private sink: BodySink | undefined;
  private bodyPaused = true;
  /** The sink hears nothing more: it got the end, the body was discarded, or the stream stopped without it. */
  private bodyDone = false;
  private discarding = false;
  /** Payloads waiting for the sink, from inboxHead on. */
  private inbox: Buffer[] | undefined;
  private inboxHead = 0;
  /** The client's end came while payloads (or a pause) held it back. */
  private bodyEndPending = false;
  private deliverScheduled = false;

  constructor(
    readonly owner: StreamOwner,
    readonly id: number,
    readonly window: FlowWindow,
    head: RequestHead,
  ) {
    this.method = head.method;
    this.path = head.path;
    this.authority = head.authority;
    this.headers = head.headers;
    this.headerBytes = head.bytes;
    this.headerPairs = head.pairs;
  }

  /** The stream is its own request body (no object of its own per call). */
  get body(): RequestBody {
    return this;
  }

  headersSent(): boolean {
    return this.responded;
  }

  respond(status: number, headers: http2.OutgoingHttpHeaders, endStream: boolean, trailers: boolean): void {
    if (this.responded || this.localEnded) return;
    this.responded = true;
    this.wantsTrailers = trailers && !endStream;
    if (endStream) this.ended = true;
    this.owner.sendHeaders(this, toFields(status, headers), endStream);
  }

  write(chunk: Buffer): boolean {
    if (this.localEnded || this.ended) return true;
    if (chunk.length === 0) return this.queuedBytes === 0;
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    this.owner.flushStream(this);
    return this.queuedBytes === 0;
  }

  onDrain(listener: () => void): void {
    if (this.queuedBytes === 0 || this.localEnded) {
      process.nextTick(listener);
      return;
    }
    if (this.drainListeners === undefined) this.drainListeners = [listener];
    else this.drainListeners.push(listener);
  }

  end(trailers?: http2.OutgoingHttpHeaders): void {
    if (this.ended || this.localEnded) return;
    this.ended = true;
    this.endQueued = true;
    this.trailers = trailers;
    this.owner.flushStream(this);
  }

  reset(): void {
    this.ended = true;
    this.owner.resetStream(this, ErrorCode.CANCEL);
  }

  onAbort(listener: () => void): void {
    if (this.abortListeners === undefined) this.abortListeners = [listener];
    else this.abortListeners.push(listener);
  }

  stopRequest(): void {
    if (this.remoteEnded || this.closed) return;
    // The reset must follow the response's last frame, not overtake it.
    this.stopAfterEnd = true;
    if (this.localEnded) this.owner.resetStream(this, ErrorCode.NO_ERROR);
  }

  // --- the request body (RequestBody) ---

  deliverTo(sink: BodySink): void {
    this.sink = sink;
    this.bodyPaused = true;
  }

  pause(): void {
    this.bodyPaused = true;
  }

  resume(): void {
    if (!this.bodyPaused) return;
    this.bodyPaused = false;
    if (this.deliverScheduled || this.bodyDone || this.sink === undefined) return;
    if (this.bodyEndPending || this.waiting()) {
      this.deliverScheduled = true;
      process.nextTick(deliverLater, this);
    }
  }

  discard(): void {
    if (this.discarding) return;
    this.discarding = true;
    this.bodyDone = true;
    this.bodyEndPending = false;
    const inbox = this.inbox;
    if (inbox === undefined) return;
    let n = 0;
    for (let i = this.inboxHead; i < inbox.length; i++) n += inbox[i]!.length;
    this.inbox = undefined;
    this.inboxHead = 0;
    if (n > 0) this.owner.bodyConsumed(this, n);
  }

  private waiting(): boolean {
    return this.inbox !== undefined && this.inboxHead < this.inbox.length;
  }

  // --- called by the session ---

  /** A DATA payload (not empty) of the client's: to the sink now if it flows, else kept (uncredited) until delivered. */
  bodyData(chunk: Buffer): void {
    if (this.discarding) {
      this.owner.bodyConsumed(this, chunk.length);
      return;
    }
    if (this.sink !== undefined && !this.bodyPaused && !this.waiting()) {
      this.owner.bodyConsumed(this, chunk.length);
      this.sink.data(chunk);
      return;
    }
    if (this.inbox === undefined) this.inbox = [chunk];
    else this.inbox.push(chunk);
  }

  /** The client ended the body (END_STREAM, or request trailers). */
  bodyEnd(): void {
    if (this.bodyDone) return;
    if (this.sink !== undefined && !this.bodyPaused && !this.waiting()) {
      this.bodyDone = true;
      this.sink.end();
      return;
    }
    this.bodyEndPending = true;
  }

  /** Hands what waits to the sink after resume(), as long as it does not pause again. */
  deliver(): void {
    this.deliverScheduled = false;
    const inbox = this.inbox;
    const sink = this.sink!;
    if (inbox !== undefined) {
      while (this.inboxHead < inbox.length && !this.bodyPaused && !this.bodyDone) {
        const chunk = inbox[this.inboxHead]!;
        inbox[this.inboxHead++] = undefined as unknown as Buffer;
        this.owner.bodyConsumed(this, chunk.length);
        sink.data(chunk);
      }
      // discard() or stopBody() inside data() dropped the inbox already.
      if (this.inbox === inbox && this.inboxHead === inbox.length) {
        inbox.length = 0;
        this.inboxHead = 0;
      }
    }
    if (this.bodyPaused || this.bodyDone || this.waiting() || !this.bodyEndPending) return;
    this.bodyEndPending = false;
    this.bodyDone = true;
    sink.end();
  }

  /** The stream closed without the client's end, or was aborted: the sink hears nothing more; what waits is dropped. */
  stopBody(): void {
    this.bodyDone = true;
    this.bodyEndPending = false;
    this.inbox = undefined;
    this.inboxHead = 0;
  }

  /** The queue went out: writers waiting for it go on. */
  drained(): void {
    const listeners = this.drainListeners;
    if (listeners === undefined) return;
    this.drainListeners = undefined;
    for (const l of listeners) l();
  }

  /** The stream ended before its response did (client reset, connection lost, proxy reset): tell the call, once. */
  aborted(): void {
    const listeners = this.abortListeners;
    this.abortListeners = undefined;
    this.drainListeners = undefined;
    this.stopBody();
    // Later, as node:http2 emits 'close': the caller may be inside a call of its own on this stream.
    if (listeners !== undefined) process.nextTick(runAll, listeners);
  }
}

function deliverLater(down: FrameDownstream) {
  down.deliver();
}

function runAll(listeners: Array<() => void>) {
  for (const l of listeners) l();
}

/** Response headers or trailers as a flat field list; `status` 0 for trailers. */
export function toFields(status: number, headers: http2.OutgoingHttpHeaders | undefined): string[] {
  const fields: string[] = status === 0 ? [] : [":status", String(status)];
  if (headers === undefined) return fields;
  for (const name in headers) {
    if (name.charCodeAt(0) === 58) continue; // pseudo-headers: only our :status
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (Array.isArray(value)) for (const v of value) fields.push(lower, String(v));
    else fields.push(lower, String(value));
  }
  return fields;
}
