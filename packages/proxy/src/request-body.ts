import type { Readable } from "node:stream";

/** Where a request body's chunks go, then its end. */
export interface BodySink {
  /** The next chunk of the body (the sink may keep it: it is never reused). */
  data(chunk: Buffer): void;
  /** The client sent the whole body; nothing follows. */
  end(): void;
}

/**
 * A call's request body as forwarding reads it: what a Downstream gives
 * (downstream.ts). node:http2 and HTTP/1.1 requests are Readables
 * (`readableBody`); the frame engine's streams are bodies of their own,
 * with no Readable per call (h2/frame-downstream.ts).
 *
 * The sink is never called from inside `deliverTo`, `pause`, `resume` or
 * `discard`: what waited in the body comes on a later tick. Chunks that
 * arrive while the body flows may be handed on at once, from the socket's
 * read. Flow control follows the sink: the client's window is credited for
 * bytes handed to it (or discarded), so a body left paused holds the client
 * back.
 */
export interface RequestBody {
  /** Hands the body's chunks, then its end, to `sink`, from now on; paused until `resume()`. Once per body. */
  deliverTo(sink: BodySink): void;
  /** Nothing more goes to the sink (neither chunks nor the end) until `resume()`. */
  pause(): void;
  /** Delivers again after `pause()` (or, the first time, after `deliverTo`). */
  resume(): void;
  /** The rest is read and dropped, `pause()` or not (still credited to the client, so its window does not stall); the sink hears nothing more. */
  discard(): void;
}

/** A node Readable (a node:http2 stream, an HTTP/1.1 request) as a RequestBody. */
export function readableBody(readable: Readable): RequestBody {
  return new ReadableBody(readable);
}

// A class: one is made per call, and methods on the prototype cost nothing per call.
class ReadableBody implements RequestBody {
  private sink: BodySink | undefined;
  private paused = true;
  private discarded = false;
  /** The Readable ended before deliverTo (its 'end' was emitted already): the end is still owed to the sink. */
  private endOwed = false;
  private endScheduled = false;

  constructor(private readonly readable: Readable) {}

  deliverTo(sink: BodySink): void {
    this.sink = sink;
    if (this.discarded) return; // already flowing into dropChunk
    const r = this.readable;
    // A request that ended before the call was taken up (the front server
    // takes streams a turn after they arrive) emitted its 'end' already.
    if (r.readableEnded) {
      this.endOwed = true;
      return;
    }
    r.on("data", (chunk: Buffer) => {
      if (!this.discarded) sink.data(chunk);
    });
    r.on("end", () => {
      if (!this.discarded) sink.end();
    });
    r.pause();
  }

  pause(): void {
    this.paused = true;
    if (!this.discarded) this.readable.pause();
  }

  resume(): void {
    if (this.discarded || this.sink === undefined) return;
    this.paused = false;
    if (this.endOwed) {
      if (!this.endScheduled) {
        this.endScheduled = true;
        process.nextTick(endLater, this);
      }
      return;
    }
    // Readable.resume() starts the flow on the next tick: never re-entrant.
    this.readable.resume();
  }

  discard(): void {
    if (this.discarded) return;
    this.discarded = true;
    this.endOwed = false;
    // Without a 'data' listener a Readable would not flow; with one (ours
    // after deliverTo, or this one) resume() reads it to its end.
    if (this.sink === undefined) this.readable.on("data", dropChunk);
    this.readable.resume();
  }

  /** The owed end, on the tick after resume(), unless paused or discarded since. */
  endNow(): void {
    this.endScheduled = false;
    if (this.paused || this.discarded || !this.endOwed) return;
    this.endOwed = false;
    this.sink!.end();
  }
}

function endLater(body: ReadableBody) {
  body.endNow();
}

function dropChunk() {}
