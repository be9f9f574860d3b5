import * as http2 from "node:http2";
import { cancelStream, type Http2Connection, isCallNotSent } from "@meshlite/transport";
import type { UpstreamConnection, UpstreamEvents, UpstreamStream } from "./upstream-stream.js";

const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** A node:http2 connection whose streams are UpstreamStreams (the streams engine's upstream side). */
export function nodeUpstreamConnection(connection: Http2Connection): UpstreamConnection {
  return { ...connection, openStream: (headers) => nodeUpstreamStream(connection.openStream(headers)) };
}

/** A node:http2 client stream as an UpstreamStream. */
export function nodeUpstreamStream(stream: http2.ClientHttp2Stream): UpstreamStream {
  return new NodeUpstreamStream(stream);
}

// A class: one is made per call, and methods on the prototype cost nothing per call.
class NodeUpstreamStream implements UpstreamStream {
  private events: UpstreamEvents | undefined;
  private error: Error | undefined;
  /** END_STREAM came (with the response headers, the last DATA or the trailers). */
  private ended = false;

  constructor(private readonly stream: http2.ClientHttp2Stream) {}

  get destroyed() {
    return this.stream.destroyed;
  }

  write(chunk: Buffer) {
    return this.stream.write(chunk);
  }

  end(chunk?: Buffer) {
    this.stream.end(chunk);
  }

  onDrain(listener: () => void) {
    if (this.stream.writableNeedDrain) this.stream.once("drain", listener);
    else process.nextTick(listener);
  }

  pause() {
    this.stream.pause();
  }

  resume() {
    this.stream.resume();
  }

  cancel(code?: number) {
    cancelStream(this.stream, code);
  }

  listen(events: UpstreamEvents) {
    this.events = events;
    const stream = this.stream;
    stream.on("error", (e) => {
      this.error = e;
    });
    stream.on("response", (headers, flags) => {
      const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
      if (endStream) this.ended = true;
      events.response(headers, endStream);
    });
    stream.on("data", (chunk: Buffer) => events.data(chunk));
    stream.on("trailers", (trailers) => events.trailers(trailers));
    stream.on("end", () => this.onEnd());
    stream.on("close", () => this.onClose());
  }

  private onEnd() {
    if (this.ended) return;
    // A connection torn down also ends the stream's readable side: that is a
    // failure, and 'close' reports it.
    const stream = this.stream;
    if (stream.destroyed || stream.session?.destroyed) return;
    this.ended = true;
    this.events?.end();
  }

  private onClose() {
    const { stream, error } = this;
    const session = stream.session;
    this.events?.close({
      rstCode: stream.rstCode ?? 0,
      notSent: stream.rstCode === NGHTTP2_REFUSED_STREAM || isCallNotSent(error),
      connectionLost: session === undefined || session.destroyed || session.closed,
      ...(error ? { error } : {}),
    });
  }
}
