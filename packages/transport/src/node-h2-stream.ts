import * as http2 from "node:http2";
import { isCallNotSent } from "./call-not-sent-error.js";
import { cancelStream } from "./cancel-stream.js";
import type { H2Stream, H2StreamConnection, H2StreamEvents } from "./h2-stream.js";
import type { Http2Connection } from "./http2-connection.js";

const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_REFUSED_STREAM } = http2.constants;

/** A node:http2 connection whose streams are H2Streams (the proxy's streams engine, the lean transport on node:http2). */
export function nodeH2StreamConnection(connection: Http2Connection): H2StreamConnection {
  // Without the session manager's members: this is no longer a connection connect-node can use.
  const { request: _request, notifyResponseByteRead: _notify, ...common } = connection;
  return { ...common, openStream: (headers) => nodeH2Stream(connection.openStream(headers)) };
}

/** A node:http2 client stream as an H2Stream. */
export function nodeH2Stream(stream: http2.ClientHttp2Stream): H2Stream {
  return new NodeH2Stream(stream);
}

/** The node:http2 stream under an H2Stream made by nodeH2Stream; undefined for any other. */
export function nodeStreamOf(stream: H2Stream): http2.ClientHttp2Stream | undefined {
  return stream instanceof NodeH2Stream ? stream.stream : undefined;
}

// The stream's events reach its wrapper through this property, with
// module-level listeners: no closures are made per call.
const kWrapper = Symbol("meshlite.nodeH2Stream");
type WrappedStream = http2.ClientHttp2Stream & { [kWrapper]: NodeH2Stream };

function onError(this: WrappedStream, error: Error) {
  this[kWrapper].error = error;
}
function onResponse(this: WrappedStream, headers: http2.IncomingHttpHeaders, flags: number) {
  this[kWrapper].onResponse(headers, flags);
}
function onData(this: WrappedStream, chunk: Buffer) {
  this[kWrapper].events.data(chunk);
}
function onTrailers(this: WrappedStream, trailers: http2.IncomingHttpHeaders) {
  this[kWrapper].events.trailers(trailers);
}
function onEnd(this: WrappedStream) {
  this[kWrapper].onEnd();
}
function onClose(this: WrappedStream) {
  this[kWrapper].onClose();
}

const unlistened: H2StreamEvents = { response() {}, data() {}, trailers() {}, end() {}, close() {} };

// A class: one is made per call, and methods on the prototype cost nothing per call.
class NodeH2Stream implements H2Stream {
  events: H2StreamEvents = unlistened;
  error: Error | undefined = undefined;
  /** END_STREAM came (with the response headers, the last DATA or the trailers). */
  private ended = false;

  constructor(readonly stream: http2.ClientHttp2Stream) {}

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

  listen(events: H2StreamEvents) {
    this.events = events;
    const stream = this.stream as WrappedStream;
    stream[kWrapper] = this;
    stream.on("error", onError);
    stream.on("response", onResponse);
    stream.on("data", onData);
    stream.on("trailers", onTrailers);
    stream.on("end", onEnd);
    stream.on("close", onClose);
  }

  onResponse(headers: http2.IncomingHttpHeaders, flags: number) {
    const endStream = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    if (endStream) this.ended = true;
    this.events.response(headers, endStream);
  }

  onEnd() {
    if (this.ended) return;
    // A connection torn down also ends the stream's readable side: that is a
    // failure, and 'close' reports it.
    const stream = this.stream;
    if (stream.destroyed || stream.session?.destroyed) return;
    this.ended = true;
    this.events.end();
  }

  onClose() {
    const { stream, error } = this;
    const session = stream.session;
    this.events.close({
      rstCode: stream.rstCode ?? 0,
      notSent: stream.rstCode === NGHTTP2_REFUSED_STREAM || isCallNotSent(error),
      connectionLost: session === undefined || session.destroyed || session.closed,
      ...(error ? { error } : {}),
    });
  }
}
