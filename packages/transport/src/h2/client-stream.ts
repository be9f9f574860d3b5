import type { H2Headers, H2Stream, H2StreamClose, H2StreamEvents } from "../h2-stream.js";
import { normalClose } from "./close-outcome.js";
import type { FlowWindow } from "./flow-control.js";
import type { SendingStream } from "./frame-connection.js";
import { ErrorCode } from "./h2-error.js";

/** What a ClientStream asks of the client session that owns it. */
export interface ClientStreamOwner {
  /** Sends what the stream queued (or keeps it, while its HEADERS wait for a slot). */
  flushStream(stream: ClientStream): void;
  /** The consumer cancelled the stream (RST_STREAM within the reset budget). */
  cancelStream(stream: ClientStream, code: number): void;
  /** `n` bytes of response DATA were handed to the consumer: credit them back to the server. */
  consumed(stream: ClientStream, n: number): void;
  /** A stream that closed on the wire while its consumer still had DATA to take is done for the consumer too. */
  lingerOver(stream: ClientStream): void;
}

/** Until `listen`: events go nowhere. */
const unlistened: H2StreamEvents = {
  response() {},
  data() {},
  trailers() {},
  end() {},
  close() {},
};
/** The window of a stream whose HEADERS wait for a slot (never written to: nothing is sent before it opens). */
const unopened: FlowWindow = Object.freeze({ send: 0, recv: 0, unacked: 0 }) as FlowWindow;

/**
 * One call's stream on a client session of the frame engine (`request()`),
 * and its H2Stream (see h2-stream.ts). A class: one is made per
 * call, and the session keeps the stream's HTTP/2 state on it too (windows,
 * what was queued, sent and received).
 *
 * Events: response, data, trailers and end come from what the socket
 * delivered (a frame at a time), or, after `resume()`, from a later tick;
 * `close` always comes on a later tick than what closed the stream. None is
 * ever called from inside the consumer's own call into the stream or its
 * session (write, end, cancel, pause, resume, request, close, destroy), so
 * cancel() from inside data() is safe: nothing is delivered after it but
 * close. Drain listeners run on a later tick too.
 */
export class ClientStream implements H2Stream, SendingStream {
  // --- HTTP/2 state, kept by the session ---
  /** 0 until its HEADERS are written (a stream waiting for a slot has no id yet). */
  id = 0;
  window: FlowWindow = unopened;
  /** We sent END_STREAM or RST_STREAM (or the server reset it). */
  localEnded = false;
  /** Gone from the session's table, or never entered it. */
  closed = false;
  readonly queue: Buffer[] = [];
  queueOffset = 0;
  queuedBytes = 0;
  /** END_STREAM goes out once the queue is sent (end() called; GET and HEAD from the start). */
  endQueued: boolean;
  readonly wantsTrailers = false;
  blocked = false;
  /** The request's header fields until its HEADERS go out. */
  fields: string[] | undefined;
  /** Fields to send never-indexed (http2.sensitiveHeaders), usually none. */
  neverIndexed: number[] | undefined;
  /** The socket write that carries the HEADERS (FrameConnection.writes + 1 when they were appended). */
  headersWrite = 0;
  /** The final response's HEADERS came. */
  responded = false;
  /** The server sent END_STREAM. */
  remoteEnded = false;
  /** Response DATA bytes received and not yet credited back to the connection window. */
  unreleased = 0;
  /** Closed on the wire, with DATA (or its end) still waiting for the consumer: the session's "close" waits for it. */
  lingers = false;

  // --- the consumer's side ---
  /** The consumer was told it closed, or will be on the next tick: no more events, response DATA dropped. */
  done = false;
  paused = false;
  private events: H2StreamEvents = unlistened;
  /** Response DATA received while paused (or behind such), from inboxHead. */
  private inbox: Buffer[] | undefined;
  private inboxHead = 0;
  /** The response ended while DATA waited in the inbox: trailers (if any) and end follow it. */
  private endPending = false;
  private trailersPending: H2Headers | undefined;
  /** A normal close that waits for the inbox to be delivered. */
  private closeWaiting: H2StreamClose | undefined;
  private deliverScheduled = false;
  private outcome: H2StreamClose = normalClose;
  private drainListener: (() => void) | undefined;
  private moreDrainListeners: Array<() => void> | undefined;

  constructor(
    private readonly owner: ClientStreamOwner,
    fields: string[],
    neverIndexed: number[] | undefined,
    endStream: boolean,
    private readonly onClosed: ((connectionLost: boolean) => void) | undefined,
  ) {
    this.fields = fields;
    this.neverIndexed = neverIndexed;
    this.endQueued = endStream;
  }

  get destroyed(): boolean {
    return this.done || this.closed;
  }

  listen(events: H2StreamEvents): void {
    this.events = events;
  }

  write(chunk: Buffer): boolean {
    if (this.done || this.closed || this.localEnded || this.endQueued) return true;
    if (chunk.length === 0) return this.queuedBytes === 0;
    this.queue.push(chunk);
    this.queuedBytes += chunk.length;
    this.owner.flushStream(this);
    return this.queuedBytes === 0;
  }

  end(chunk?: Buffer): void {
    if (this.done || this.closed || this.localEnded || this.endQueued) return;
    if (chunk !== undefined && chunk.length > 0) {
      this.queue.push(chunk);
      this.queuedBytes += chunk.length;
    }
    this.endQueued = true;
    this.owner.flushStream(this);
  }

  onDrain(listener: () => void): void {
    if (this.queuedBytes === 0 || this.done || this.closed) {
      process.nextTick(listener);
      return;
    }
    if (this.drainListener === undefined) this.drainListener = listener;
    else if (this.moreDrainListeners === undefined) this.moreDrainListeners = [listener];
    else this.moreDrainListeners.push(listener);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this.deliverScheduled || this.done) return;
    if (this.endPending || (this.inbox !== undefined && this.inboxHead < this.inbox.length)) {
      this.deliverScheduled = true;
      process.nextTick(deliverLater, this);
    }
  }

  cancel(code: number = ErrorCode.CANCEL): void {
    if (this.done) return;
    this.owner.cancelStream(this, code);
  }

  // --- called by the session ---

  /** The final response's headers. */
  response(headers: H2Headers, endStream: boolean): void {
    this.events.response(headers, endStream);
  }

  /** A DATA payload: to the consumer now, or into the inbox while paused (or behind what waits there). */
  data(chunk: Buffer): void {
    if (this.paused || (this.inbox !== undefined && this.inboxHead < this.inbox.length)) {
      if (this.inbox === undefined) this.inbox = [chunk];
      else this.inbox.push(chunk);
      return;
    }
    this.events.data(chunk);
    this.owner.consumed(this, chunk.length);
  }

  /** The response ended (END_STREAM on DATA, or trailers). */
  ended(trailers: H2Headers | undefined): void {
    if (this.paused || (this.inbox !== undefined && this.inboxHead < this.inbox.length)) {
      this.endPending = true;
      this.trailersPending = trailers;
      return;
    }
    this.deliverEnd(trailers);
  }

  private deliverEnd(trailers: H2Headers | undefined) {
    if (trailers !== undefined) {
      this.events.trailers(trailers);
      if (this.done) return;
    }
    this.events.end();
  }

  /** Hands the inbox to the consumer after resume(), as long as it does not pause again. */
  deliver(): void {
    this.deliverScheduled = false;
    const inbox = this.inbox;
    if (inbox !== undefined) {
      while (this.inboxHead < inbox.length && !this.paused && !this.done) {
        const chunk = inbox[this.inboxHead]!;
        inbox[this.inboxHead++] = undefined as unknown as Buffer;
        this.events.data(chunk);
        this.owner.consumed(this, chunk.length);
      }
      if (this.inboxHead === inbox.length) {
        inbox.length = 0;
        this.inboxHead = 0;
      }
    }
    if (this.paused || this.done || this.inboxHead > 0) return;
    if (this.endPending) {
      this.endPending = false;
      const trailers = this.trailersPending;
      this.trailersPending = undefined;
      this.deliverEnd(trailers);
    }
    if (this.closeWaiting !== undefined && !this.done) this.finish(this.closeWaiting, true);
  }

  /**
   * The stream is over for the consumer: `close` on the next tick (after
   * onClosed). A normal close waits for what the inbox still holds to be
   * delivered, unless `now`; any other drops it.
   */
  finish(outcome: H2StreamClose, now = false): void {
    if (this.done) return;
    if (!now && outcome === normalClose && (this.endPending || (this.inbox !== undefined && this.inbox.length > 0))) {
      this.closeWaiting = outcome;
      return;
    }
    this.done = true;
    this.outcome = outcome;
    this.closeWaiting = undefined;
    this.inbox = undefined;
    this.endPending = false;
    this.trailersPending = undefined;
    this.drainListener = undefined;
    this.moreDrainListeners = undefined;
    process.nextTick(closeLater, this);
    if (this.lingers) this.owner.lingerOver(this);
  }

  /** The close event (and onClosed just before it). */
  emitClose(): void {
    const outcome = this.outcome;
    this.onClosed?.(outcome.connectionLost);
    this.events.close(outcome);
  }

  /** The queue went out: drain listeners run on the next tick. */
  drained(): void {
    if (this.queuedBytes > 0 || this.drainListener === undefined) return;
    process.nextTick(this.drainListener);
    this.drainListener = undefined;
    const more = this.moreDrainListeners;
    if (more === undefined) return;
    this.moreDrainListeners = undefined;
    for (const l of more) process.nextTick(l);
  }
}

function deliverLater(stream: ClientStream) {
  stream.deliver();
}

function closeLater(stream: ClientStream) {
  stream.emitClose();
}
