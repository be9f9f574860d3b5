import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

/**
 * How the raw server misbehaves, chosen per call by the request header `x-raw-mode`.
 * - truncated: an envelope announcing 100 bytes carries 10, then grpc-status 0
 * - no-status: a valid message, then the stream ends without trailers
 * - wrong-content-type: 200 with text/html
 * - http-503: HTTP status 503 and nothing else
 * - garbage: an envelope of bytes that are not a protobuf message, then grpc-status 0
 * - two-messages: two messages for a unary call, then grpc-status 0
 * - compressed-no-encoding: the compressed flag set without a grpc-encoding header
 * - rst: response headers, then RST_STREAM INTERNAL_ERROR
 * - huge-length: an envelope announcing 0xffffffff bytes, then the stream ends
 * - bad-status: grpc-status "abc"
 * - silent: headers, then nothing (the client's deadline must end it)
 * - refused: RST_STREAM REFUSED_STREAM before any response (the call was not processed)
 */
export type RawMode =
  | "truncated"
  | "no-status"
  | "wrong-content-type"
  | "http-503"
  | "garbage"
  | "two-messages"
  | "compressed-no-encoding"
  | "rst"
  | "huge-length"
  | "bad-status"
  | "silent"
  | "refused";

export interface RawServer {
  readonly baseUrl: string;
  close(): Promise<void>;
}

function envelope(flags: number, data: Uint8Array, announced = data.byteLength): Buffer {
  const b = Buffer.alloc(5 + data.byteLength);
  b[0] = flags;
  b.writeUInt32BE(announced, 1);
  b.set(data, 5);
  return b;
}

// ConformanceResponse{index: 1}
const validMessage = new Uint8Array([0x08, 0x01]);

export async function startRawServer(host = "127.0.0.1"): Promise<RawServer> {
  const server = http2.createServer();
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    // Read the request fully before answering (like a real server would).
    stream.resume();
    const mode = headers["x-raw-mode"] as RawMode;
    const grpcHeaders = { ":status": 200, "content-type": "application/grpc" };
    const withTrailers = (body: Buffer, trailers: http2.OutgoingHttpHeaders) => {
      stream.respond(grpcHeaders, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers(trailers));
      stream.end(body);
    };
    switch (mode) {
      case "truncated":
        return withTrailers(envelope(0, new Uint8Array(10), 100), { "grpc-status": "0" });
      case "no-status":
        stream.respond(grpcHeaders);
        return stream.end(envelope(0, validMessage));
      case "wrong-content-type":
        stream.respond({ ":status": 200, "content-type": "text/html" });
        return stream.end("<html>hello</html>");
      case "http-503":
        stream.respond({ ":status": 503 });
        return stream.end();
      case "garbage":
        return withTrailers(envelope(0, new Uint8Array([0xff, 0xff, 0xff, 0xff])), { "grpc-status": "0" });
      case "two-messages":
        return withTrailers(Buffer.concat([envelope(0, validMessage), envelope(0, validMessage)]), {
          "grpc-status": "0",
        });
      case "compressed-no-encoding":
        return withTrailers(envelope(1, validMessage), { "grpc-status": "0" });
      case "rst":
        stream.respond(grpcHeaders);
        stream.write(envelope(0, validMessage));
        // Not close(INTERNAL_ERROR): on Node 24 that ends the stream first, and the client
        // ignores the RST_STREAM after END_STREAM. destroy(err) resets with INTERNAL_ERROR.
        return stream.destroy(new Error("reset by the test server"));
      case "huge-length":
        stream.respond(grpcHeaders);
        return stream.end(envelope(0, new Uint8Array(3), 0xffffffff));
      case "bad-status":
        return withTrailers(envelope(0, validMessage), { "grpc-status": "abc" });
      case "refused":
        return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      case "silent":
        stream.respond(grpcHeaders);
        return;
      default:
        stream.respond({ ":status": 400 });
        stream.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    baseUrl: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      }),
  };
}
