import type * as http from "node:http";
import * as http2 from "node:http2";
import type { Readable } from "node:stream";

/**
 * The client side of one call, the same for an HTTP/2 stream and an HTTP/1.1
 * request, so forwarding is written once.
 */
export interface Downstream {
  readonly method: string;
  readonly path: string;
  readonly authority: string | undefined;
  /** Request headers without pseudo-headers. */
  readonly headers: http.IncomingHttpHeaders;
  /** Size of the request header block as HTTP/2 counts it (name + value + 32 per field). */
  readonly headerBytes: number;
  readonly http1: boolean;
  /** The request body. */
  readonly body: Readable;
  headersSent(): boolean;
  /** Sends the response headers; `trailers` keeps the stream open for trailers at end(). */
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
}

const { NGHTTP2_CANCEL } = http2.constants;

function headerBytes(headers: http.IncomingHttpHeaders | http2.IncomingHttpHeaders): number {
  let n = 0;
  for (const name in headers) {
    const value = headers[name];
    if (Array.isArray(value)) for (const v of value) n += name.length + v.length + 32;
    else if (value !== undefined) n += name.length + String(value).length + 32;
  }
  return n;
}

export function http2Downstream(stream: http2.ServerHttp2Stream, raw: http2.IncomingHttpHeaders): Downstream {
  const headers: http.IncomingHttpHeaders = {};
  let bytes = 0;
  for (const name in raw) {
    const value = raw[name];
    if (name.charCodeAt(0) !== 58 /* ':' */) headers[name] = value as string;
    if (Array.isArray(value)) for (const v of value) bytes += name.length + v.length + 32;
    else if (value !== undefined) bytes += name.length + String(value).length + 32;
  }
  let pendingTrailers: http2.OutgoingHttpHeaders | undefined;
  let ended = false;
  return {
    method: String(raw[":method"] ?? ""),
    path: String(raw[":path"] ?? ""),
    authority: (raw[":authority"] as string | undefined) ?? (raw.host as string | undefined),
    headers,
    headerBytes: bytes,
    http1: false,
    body: stream,
    headersSent: () => stream.headersSent,
    respond(status, responseHeaders, endStream, trailers) {
      if (endStream) ended = true;
      if (trailers) {
        stream.once("wantTrailers", () => {
          if (!stream.destroyed) stream.sendTrailers(pendingTrailers ?? {});
        });
      }
      responseHeaders[":status"] = status;
      stream.respond(responseHeaders, { endStream, waitForTrailers: trailers });
    },
    write: (chunk) => stream.write(chunk),
    onDrain: (listener) => stream.once("drain", listener),
    end(trailers) {
      ended = true;
      pendingTrailers = trailers;
      stream.end();
    },
    reset() {
      ended = true;
      if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
    },
    onAbort(listener) {
      stream.once("close", () => {
        if (!ended || stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) listener();
      });
    },
  };
}

export function http1Downstream(req: http.IncomingMessage, res: http.ServerResponse): Downstream {
  let ended = false;
  return {
    method: req.method ?? "",
    path: req.url ?? "",
    authority: req.headers.host,
    headers: req.headers,
    headerBytes: headerBytes(req.headers),
    http1: true,
    body: req,
    headersSent: () => res.headersSent,
    respond(status, responseHeaders, endStream) {
      res.writeHead(status, responseHeaders as http.OutgoingHttpHeaders);
      if (endStream) {
        ended = true;
        res.end();
      }
    },
    write: (chunk) => res.write(chunk),
    onDrain: (listener) => res.once("drain", listener),
    end() {
      ended = true;
      res.end();
    },
    reset() {
      ended = true;
      res.destroy();
    },
    onAbort(listener) {
      res.once("close", () => {
        if (!ended || !res.writableFinished) listener();
      });
    },
  };
}
