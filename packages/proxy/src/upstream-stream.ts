import type * as http2 from "node:http2";
import type { EndpointConnection } from "@meshlite/transport/connection";

/**
 * One call's stream to an upstream endpoint, as forwarding sees it: the same
 * whether node:http2 carries it (`engine: "streams"`) or the frame engine's
 * client session does (`engine: "frames"`). Its events go to the one
 * `UpstreamEvents` given to `listen`, right after the stream is opened.
 */
export interface UpstreamStream {
  /** Writes request body bytes; false: wait for `onDrain` before writing more. */
  write(chunk: Buffer): boolean;
  /** Ends the request body (END_STREAM), after `chunk` when given. */
  end(chunk?: Buffer): void;
  /** Calls `listener` once when what was written has gone out (or at once when nothing waits). */
  onDrain(listener: () => void): void;
  /** Stops handing response DATA to `data` (the client reads slowly); the stream's window closes behind it. */
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
  listen(events: UpstreamEvents): void;
}

/** Response headers or trailers as node:http2 gives them: lower-case names, `:status` among the response's. */
export type UpstreamHeaders = http2.IncomingHttpHeaders;

/** What an upstream stream tells forwarding, in this order: response, data..., trailers, end, close. */
export interface UpstreamEvents {
  /** The response's headers. `endStream`: nothing follows (a trailers-only response). */
  response(headers: UpstreamHeaders, endStream: boolean): void;
  /** Response body bytes. */
  data(chunk: Buffer): void;
  /** The response's trailers (END_STREAM came with them; `end` follows). */
  trailers(trailers: UpstreamHeaders): void;
  /** The response ended normally (END_STREAM), after its body or trailers. Not called after `response(…, true)`. */
  end(): void;
  /** The stream is over, whichever way: always the last event, exactly once. */
  close(outcome: UpstreamClose): void;
}

/** How an upstream stream ended. */
export interface UpstreamClose {
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

/** An endpoint's connection as the proxy's pools hold it: it opens UpstreamStreams. */
export interface UpstreamConnection extends EndpointConnection {
  /**
   * Opens a stream now on a ready connection (throws CallNotSentError when it
   * is not ready). `headers` carries `:method` and `:path`; a GET's request
   * ends at once, a POST's stays open for `write` and `end`.
   */
  openStream(headers: http2.OutgoingHttpHeaders): UpstreamStream;
}
