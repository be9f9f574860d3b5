import type * as http from "node:http";
import * as http2 from "node:http2";
import { resetClientStream } from "./client-guard.js";
import { type RequestBody, readableBody } from "./request-body.js";

/**
 * The client side of one call, the same for an HTTP/2 stream and an HTTP/1.1
 * request, so forwarding is written once. Classes rather than object
 * literals: one of these is made per call, and methods on the prototype cost
 * nothing per call.
 */
export interface Downstream {
  readonly method: string;
  readonly path: string;
  readonly authority: string | undefined;
  /** Request headers without pseudo-headers. */
  readonly headers: http.IncomingHttpHeaders;
  /** Size of the request header block as HTTP/2 counts it (name + value + 32 per field). */
  readonly headerBytes: number;
  /** Number of request header fields, pseudo-headers included. */
  readonly headerPairs: number;
  readonly http1: boolean;
  /** The request body. */
  readonly body: RequestBody;
  headersSent(): boolean;
  /** Sends the response headers (the object is taken over); `trailers` keeps the stream open for trailers at end(). */
  respond(status: number, headers: http2.OutgoingHttpHeaders, endStream: boolean, trailers: boolean): void;
  /** Writes body bytes; false means wait for `onDrain`. */
  write(chunk: Buffer): boolean;
  onDrain(listener: () => void): void;
  /** Ends the response, with trailers when respond() asked for them (HTTP/1.1 drops them). */
  end(trailers?: http2.OutgoingHttpHeaders): void;
  /** Aborts the response (RST_STREAM, or closes the HTTP/1.1 connection). */
  reset(): void;
  /** Called once when the client goes away before the response ended. */
  onAbort(listener: () => void): void;
  /**
   * The response ended while the client still sends its request: tell it to
   * stop (HTTP/2: RST_STREAM NO_ERROR once the response is out, as gRPC
   * servers do; HTTP/1.1 has no way, the rest is read and dropped).
   */
  stopRequest(): void;
}

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

/**
 * The size of a header block as HTTP/2 counts it, and its number of fields;
 * with `regular`, copies the fields that are not pseudo-headers into it.
 */
function headerSize(
  headers: http.IncomingHttpHeaders,
  regular?: http.IncomingHttpHeaders,
): { bytes: number; pairs: number } {
  let bytes = 0;
  let pairs = 0;
  for (const name in headers) {
    const value = headers[name];
    if (regular !== undefined && name.charCodeAt(0) !== 58 /* ':' */) regular[name] = value as string;
    if (Array.isArray(value)) {
      for (const v of value) bytes += name.length + v.length + 32;
      pairs += value.length;
    } else if (value !== undefined) {
      bytes += name.length + String(value).length + 32;
      pairs++;
    }
  }
  return { bytes, pairs };
}

function sendPendingTrailers(this: Http2Downstream) {
  if (this.stream.destroyed) return;
  this.stream.sendTrailers(this.pendingTrailers ?? {});
  this.trailersSent = true;
  // Node sends the trailers after this callback returns: the reset waits for that.
  if (this.stopAfterTrailers) setImmediate(closeNoError, this.stream);
}

function closeNoError(stream: http2.ServerHttp2Stream) {
  if (!stream.destroyed) stream.close(NGHTTP2_NO_ERROR);
}

class Http2Downstream implements Downstream {
  readonly method: string;
  readonly path: string;
  readonly authority: string | undefined;
  readonly headers: http.IncomingHttpHeaders = {};
  readonly headerBytes: number;
  readonly headerPairs: number;
  readonly http1 = false;
  readonly body: RequestBody;
  pendingTrailers: http2.OutgoingHttpHeaders | undefined;
  ended = false;
  waitsForTrailers = false;
  trailersSent = false;
  stopAfterTrailers = false;

  constructor(
    readonly stream: http2.ServerHttp2Stream,
    raw: http2.IncomingHttpHeaders,
  ) {
    this.body = readableBody(stream);
    this.method = String(raw[":method"] ?? "");
    this.path = String(raw[":path"] ?? "");
    this.authority = (raw[":authority"] as string | undefined) ?? (raw.host as string | undefined);
    const size = headerSize(raw, this.headers);
    this.headerBytes = size.bytes;
    this.headerPairs = size.pairs;
  }
  headersSent() {
    return this.stream.headersSent;
  }
  respond(status: number, headers: http2.OutgoingHttpHeaders, endStream: boolean, trailers: boolean) {
    if (endStream) this.ended = true;
    if (trailers) {
      this.waitsForTrailers = true;
      this.stream.on("wantTrailers", sendPendingTrailers.bind(this));
    }
    headers[":status"] = status;
    this.stream.respond(headers, { endStream, waitForTrailers: trailers });
  }
  write(chunk: Buffer) {
    return this.stream.write(chunk);
  }
  onDrain(listener: () => void) {
    this.stream.once("drain", listener);
  }
  end(trailers?: http2.OutgoingHttpHeaders) {
    this.ended = true;
    this.pendingTrailers = trailers;
    this.stream.end();
  }
  reset() {
    this.ended = true;
    resetClientStream(this.stream, NGHTTP2_CANCEL);
  }
  onAbort(listener: () => void) {
    this.stream.on("close", () => {
      if (!this.ended || this.stream.rstCode !== NGHTTP2_NO_ERROR) listener();
    });
  }
  stopRequest() {
    const stream = this.stream;
    if (stream.destroyed || stream.readableEnded) return;
    // The reset must follow the response's last frame, not overtake it.
    if (this.waitsForTrailers && !this.trailersSent) this.stopAfterTrailers = true;
    else setImmediate(closeNoError, stream);
  }
}

class Http1Downstream implements Downstream {
  readonly method: string;
  readonly path: string;
  readonly authority: string | undefined;
  readonly headers: http.IncomingHttpHeaders;
  readonly headerBytes: number;
  readonly headerPairs: number;
  readonly http1 = true;
  readonly body: RequestBody;
  ended = false;

  constructor(
    readonly req: http.IncomingMessage,
    readonly res: http.ServerResponse,
  ) {
    this.body = readableBody(req);
    this.method = req.method ?? "";
    this.path = req.url ?? "";
    this.authority = req.headers.host;
    this.headers = req.headers;
    const size = headerSize(req.headers);
    this.headerBytes = size.bytes;
    this.headerPairs = req.rawHeaders.length / 2;
  }
  headersSent() {
    return this.res.headersSent;
  }
  respond(status: number, headers: http2.OutgoingHttpHeaders, endStream: boolean) {
    this.res.writeHead(status, headers as http.OutgoingHttpHeaders);
    if (endStream) {
      this.ended = true;
      this.res.end();
    }
  }
  write(chunk: Buffer) {
    return this.res.write(chunk);
  }
  onDrain(listener: () => void) {
    this.res.once("drain", listener);
  }
  end() {
    this.ended = true;
    this.res.end();
  }
  reset() {
    this.ended = true;
    this.res.destroy();
  }
  onAbort(listener: () => void) {
    this.res.once("close", () => {
      if (!this.ended || !this.res.writableFinished) listener();
    });
  }
  stopRequest() {}
}

export function http2Downstream(stream: http2.ServerHttp2Stream, raw: http2.IncomingHttpHeaders): Downstream {
  return new Http2Downstream(stream, raw);
}

export function http1Downstream(req: http.IncomingMessage, res: http.ServerResponse): Downstream {
  return new Http1Downstream(req, res);
}
