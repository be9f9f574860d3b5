import type { EventEmitter } from "node:events";
import type * as http2 from "node:http2";
import type { ClientStream } from "./client-stream.js";

/** Options of createClientSession. */
export interface ClientSessionOptions {
  /** :authority of requests whose headers give none: the endpoint's host[:port]. */
  authority: string;
  /** :scheme of requests whose headers give none. Default "https" on a TLS socket, else "http". */
  scheme?: "http" | "https";
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: each response's receive window. Default 4 MiB (as the proxy sets node:http2's). */
  initialWindowSize?: number;
  /** The connection's receive window (opened with a WINDOW_UPDATE at start). Default 4x initialWindowSize, at most 2^31 − 1. */
  connectionWindowSize?: number;
  /**
   * Response bytes the session may hold for consumers that have not taken
   * them (a paused stream), with the connection window credited as they
   * arrive: a stalled stream holds back only itself (each stream's window
   * still waits for its consumer). Past it the connection window waits for
   * consumers too. Default 64 MiB.
   */
  maxBufferedBytes?: number;
  /** Our SETTINGS_MAX_HEADER_LIST_SIZE; a response whose headers or trailers are larger is reset. Default 65536. */
  maxHeaderListSize?: number;
  /** PINGs that may wait for their ACK at once; ping() returns false past it. Default 10 (as node:http2's maxOutstandingPings). */
  maxOutstandingPings?: number;
  /** How long the server may take to acknowledge our SETTINGS before the connection fails with SETTINGS_TIMEOUT. Default 10000 ms. */
  settingsTimeoutMs?: number;
}

/**
 * A client HTTP/2 connection of the frame engine, driven like node:http2's
 * ClientHttp2Session for the members here. Events:
 * `"remoteSettings"(settings)` on every SETTINGS from the server (the first
 * one means usable), `"goaway"(errorCode, lastStreamId)`, `"error"(err)`,
 * `"close"()` (once, last, after the socket closed and after every stream's
 * close). "error" and "close" come on a later tick than what caused them;
 * as for any EventEmitter, an "error" without a listener throws.
 */
export interface ClientSession extends EventEmitter {
  /** The socket is closed (or being destroyed): nothing more is sent or received. */
  readonly destroyed: boolean;
  /** No new streams can open: close() was called, a GOAWAY was sent or received, or the session is destroyed. */
  readonly closed: boolean;
  /** True until the server's first SETTINGS arrived. */
  readonly connecting: boolean;
  /** Streams open on the connection or waiting for a slot (a cancelled stream still draining counts). */
  readonly openStreams: number;
  /**
   * Opens a stream: `headers` carry :method and :path (:scheme and
   * :authority default to the session's). A GET or HEAD ends its request at
   * once; any other method's ends with `stream.end()`. Past the server's
   * SETTINGS_MAX_CONCURRENT_STREAMS the stream waits here, HEADERS unsent,
   * until a slot frees. `onClosed(connectionLost)` is called just before the
   * stream's close event. Throws CallNotSentError when the session is closed.
   */
  request(headers: http2.OutgoingHttpHeaders, onClosed?: (connectionLost: boolean) => void): ClientStream;
  /** Sends a PING; `callback` on its ACK (or with an error when the session closes first). False: not sent. */
  ping(callback: (err: Error | null, durationMs: number) => void): boolean;
  /** Graceful: GOAWAY NO_ERROR, open streams finish, then the socket ends ("close" follows). */
  close(): void;
  /** Closes the socket now: open streams close with connectionLost, "error" (if `error` is given), then "close". */
  destroy(error?: Error): void;
  /** Of the socket. */
  ref(): void;
  unref(): void;
}
