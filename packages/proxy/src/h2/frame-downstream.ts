import type * as http from "node:http";
import type * as http2 from "node:http2";
import { Readable } from "node:stream";
import type { Downstream } from "../downstream.js";
import type { FlowWindow } from "./flow-control.js";
import { ErrorCode } from "./h2-error.js";
import type { RequestHead } from "./request-headers.js";

/** What a FrameDownstream asks of the server session that owns its stream. */
export interface StreamOwner {
  /** Sends a HEADERS block (response headers or trailers). */
  sendHeaders(stream: FrameDownstream, fields: string[], endStream: boolean): void;
  /** Sends what the stream has queued, as far as the windows and the socket allow. */
  flushStream(stream: FrameDownstream): void;
  /** RST_STREAM from the proxy's side (not the client's reset). */
  resetStream(stream: FrameDownstream, code: number): void;
  /** The request body was read from: hand credit back to the client for what left its buffer. */
  bodyRead(stream: FrameDownstream): void;
}

/** The request body: DATA payloads, pushed by the session; reading it gives the client credit back. */
class FrameBody extends Readable {
  constructor(private readonly down: FrameDownstream) {
    super({ highWaterMark: 65536 });
  }
  override _read() {}
  // Every way out of the buffer goes through read() (flowing mode too);
  // chunks that skip the buffer (pushed while flowing) are counted at push.
  override read(n?: number) {
    const chunk = super.read(n);
    if (chunk !== null) this.down.owner.bodyRead(this.down);
    return chunk;
  }
}

/**
 * One client stream of the frame engine, and the Downstream of its call
 * (see downstream.ts for the contract). A class: one is made per call. The
 * session keeps the HTTP/2 state here too (windows, what was sent and
 * received), so a call costs one object besides its body.
 */
export class FrameDownstream implements Downstream {
  readonly method: string;
  readonly path: string;
  readonly authority: string | undefined;
  readonly headers: http.IncomingHttpHeaders;
  readonly headerBytes: number;
  readonly headerPairs: number;
  readonly http1 = false;
  readonly body: Readable;

  // --- HTTP/2 state, kept by the session ---
  /** The client sent END_STREAM (half-closed remote). */
  remoteEnded = false;
  /** We sent END_STREAM or RST_STREAM. */
  localEnded = false;
  /** Gone from the stream table (closed or reset either way). */
  closed = false;
  /** The proxy reset it (not counted as the client's reset). */
  resetByProxy = false;
  /** Flow-controlled bytes received (padding included) and bytes pushed into the body. */
  received = 0;
  pushed = 0;
  /** Bytes handed back to the client's windows. */
  released = 0;
  releaseScheduled = false;
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
    this.body = new FrameBody(this);
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

  // --- called by the session ---

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
    if (!this.body.destroyed) this.body.destroy();
    // Later, as node:http2 emits 'close': the caller may be inside a call of its own on this stream.
    if (listeners !== undefined) process.nextTick(runAll, listeners);
  }
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
