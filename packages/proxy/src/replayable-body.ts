import type { H2Stream } from "@meshlite/transport/connection";
import type { EnvelopeMeter } from "./envelope-meter.js";
import type { BodySink, RequestBody } from "./request-body.js";

/** Bytes of request body kept for a resend until the upstream answers. */
export const maxReplayBytes = 1024 * 1024;

/**
 * A call's request body, pumped into the current upstream stream and kept
 * (up to `maxReplayBytes`) until the upstream answers, so that a call no
 * server saw can be sent again to another endpoint with its body.
 */
export interface ReplayableBody {
  /** The client sent the whole body. */
  readonly ended: boolean;
  /** The body so far can be sent again: under the replay limit and no response yet. */
  readonly replayable: boolean;
  /** Sends the body so far to `stream`, then the rest as it arrives. */
  sendTo(stream: H2Stream): void;
  /** No stream takes the body for now: it waits (paused) for the next sendTo. */
  detach(): void;
  /** The upstream answered: the body will not be sent again, the replay is dropped. */
  commit(): void;
  /** The rest of the body is read and dropped. */
  discard(): void;
}

/**
 * Starts following `body` (paused until the first sendTo). `meter` sees every
 * chunk; when one completes a message over the limit, `onOverLimit` gets its
 * size and the chunk goes nowhere.
 */
export function createReplayableBody(
  body: RequestBody,
  meter: EnvelopeMeter,
  onOverLimit: (bytes: number) => void,
): ReplayableBody {
  return new Body(body, meter, onOverLimit);
}

// A class: one is made per call, and methods on the prototype cost nothing per call.
class Body implements ReplayableBody, BodySink {
  ended = false;
  private replay: Buffer[] | undefined = [];
  private replayBytes = 0;
  private stream: H2Stream | undefined;
  // The newest chunk waits for the end of the current I/O turn: when the
  // request ends in the same turn (every unary call), chunk and end go
  // upstream as one DATA frame with END_STREAM instead of two frames, which
  // spares the backend and the proxy a frame per call.
  private held: Buffer | undefined;
  private flushScheduled = false;

  constructor(
    private readonly body: RequestBody,
    private readonly meter: EnvelopeMeter,
    private readonly onOverLimit: (bytes: number) => void,
  ) {
    body.deliverTo(this);
  }

  get replayable() {
    return this.replay !== undefined;
  }

  sendTo(stream: H2Stream) {
    this.stream = stream;
    this.held = undefined; // a held chunk is in the replay
    if (this.replay) for (const chunk of this.replay) stream.write(chunk);
    if (this.ended) stream.end();
    else this.body.resume();
  }

  detach() {
    this.stream = undefined;
    // No body flows while no stream takes it: chunks would only go to the
    // replay, and one past its limit would be lost. sendTo resumes the body
    // after writing the replay to the new stream.
    this.body.pause();
  }

  commit() {
    this.replay = undefined;
  }

  discard() {
    this.body.discard();
  }

  /** BodySink: the next chunk from the client. */
  data(chunk: Buffer) {
    const big = this.meter.push(chunk);
    if (big >= 0) {
      this.onOverLimit(big);
      return;
    }
    if (this.replay) {
      this.replayBytes += chunk.length;
      if (this.replayBytes <= maxReplayBytes) this.replay.push(chunk);
      else this.replay = undefined;
    }
    const stream = this.stream;
    if (stream === undefined) return; // paused; sendTo writes the replay
    if (this.held) this.write(stream, this.held);
    this.held = chunk;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(flushHeld, this);
    }
  }

  flushHeld() {
    this.flushScheduled = false;
    const chunk = this.held;
    this.held = undefined;
    if (chunk && this.stream && !this.stream.destroyed) this.write(this.stream, chunk);
  }

  private write(stream: H2Stream, chunk: Buffer) {
    if (stream.write(chunk)) return;
    this.body.pause();
    stream.onDrain(() => {
      if (stream === this.stream) this.body.resume();
    });
  }

  /** BodySink: the client sent the whole body. */
  end() {
    this.ended = true;
    const chunk = this.held;
    this.held = undefined;
    if (this.stream && !this.stream.destroyed) this.stream.end(chunk);
  }
}

function flushHeld(body: Body) {
  body.flushHeld();
}
