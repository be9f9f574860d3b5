import type * as http2 from "node:http2";
import type { SessionConnection } from "./session-connection.js";

/**
 * One call's HTTP/2 client stream, the same whether the frame engine's client
 * session carries it (h2/client-stream.ts) or node:http2 does
 * (node-h2-stream.ts): what the lean transport's calls and the proxy's
 * forwarding talk to. Its events go to the one `H2StreamEvents` given to
 * `listen`, right after the stream is opened.
 */
export interface H2Stream {
  /** Writes request body bytes; false: wait for `onDrain` before writing more. */
  write(chunk: Buffer): boolean;
  /** Ends the request body (END_STREAM), after `chunk` when given. */
  end(chunk?: Buffer): void;
  /** Calls `listener` once when what was written has gone out (or at once when nothing waits). */
  onDrain(listener: () => void): void;
  /** Stops handing response DATA to `data` (the consumer reads slowly); the stream's window closes behind it. */
  pause(): void;
  /** Hands response DATA again after `pause`. */
  resume(): void;
  /**
   * Resets the stream: CANCEL by default, NO_ERROR for a response that is
   * complete while the request is still being sent. `close` still follows.
   */
  cancel(code?: number): void;
  /** The stream is over (closed or reset): writes go nowhere. */
  readonly destroyed: boolean;
  /** Sets the receiver of the stream's events. Once, right after opening. */
  listen(events: H2StreamEvents): void;
}

/** Response headers or trailers as node:http2 gives them: lower-case names, `:status` among the response's. */
export type H2Headers = http2.IncomingHttpHeaders;

/** What a stream tells its consumer, in this order: response, data..., trailers, end, close. */
export interface H2StreamEvents {
  /** The response's headers. `endStream`: nothing follows (a trailers-only response). */
  response(headers: H2Headers, endStream: boolean): void;
  /** Response body bytes. */
  data(chunk: Buffer): void;
  /** The response's trailers (END_STREAM came with them; `end` follows). */
  trailers(trailers: H2Headers): void;
  /** The response ended normally (END_STREAM), after its body or trailers. Not called after `response(…, true)`. */
  end(): void;
  /** The stream is over, whichever way: always the last event, exactly once. */
  close(outcome: H2StreamClose): void;
}

/** How a stream ended. */
export interface H2StreamClose {
  /** The RST_STREAM code, 0 (NO_ERROR) when the stream closed normally or was reset with NO_ERROR. */
  readonly rstCode: number;
  /**
   * The server provably never processed the call: REFUSED_STREAM, a stream
   * above a GOAWAY's last stream id, or a request that never left this
   * process. Safe to send again to another endpoint.
   */
  readonly notSent: boolean;
  /** The connection went away under the stream (socket closed, GOAWAY with an error, keepalive timeout). */
  readonly connectionLost: boolean;
  /** What went wrong, for messages; undefined when the stream closed normally. */
  readonly error?: Error;
}

/**
 * An endpoint's connection that opens H2Streams: the frame engine's
 * (createFrameEngineConnection) or node:http2's (nodeH2StreamConnection).
 * The lean transport and the proxy's pools use it.
 */
export interface H2StreamConnection extends SessionConnection<H2Stream> {
  /** The origin of the calls, `http://name:port`: the service name, not the address dialled. */
  readonly authority: string;
  /**
   * Opens a stream now on a ready connection (throws CallNotSentError when it
   * is not ready). `headers` carries `:method` and `:path`; a GET's request
   * ends at once, a POST's stays open for `write` and `end`.
   */
  openStream(headers: http2.OutgoingHttpHeaders): H2Stream;
}
