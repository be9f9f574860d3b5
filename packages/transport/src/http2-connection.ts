import * as http2 from "node:http2";
import { markConnectionLost, markNotSent } from "./call-not-sent-error.js";
import {
  type ConnectionEvent,
  createSessionConnection,
  type SessionConnection,
  type SessionConnectionOptions,
} from "./session-connection.js";

export type { KeepaliveOptions } from "./session-connection.js";

/**
 * What a Connect transport needs of an HTTP/2 connection: connect-node's
 * session manager interface (it does not export the type).
 */
export interface Http2SessionManager {
  /** The origin of the calls, `http://name:port`; must equal the transport's baseUrl origin. */
  readonly authority: string;
  /** Opens a stream for a call. */
  request(
    method: string,
    path: string,
    headers: http2.OutgoingHttpHeaders,
    options: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): Promise<http2.ClientHttp2Stream>;
  /** Told when response bytes were read (connect-node uses it for keepalive bookkeeping). */
  notifyResponseByteRead(stream: http2.ClientHttp2Stream): void;
}

/** Options of createHttp2Connection. */
export interface Http2ConnectionOptions extends SessionConnectionOptions {
  /** Passed to http2.connect (settings, maxSessionMemory, ...). */
  sessionOptions?: http2.ClientSessionOptions;
}

/** Why the connection changed state. */
export type Http2ConnectionEvent = ConnectionEvent;

type RequestOptions = Omit<http2.ClientSessionRequestOptions, "signal">;

/**
 * One node:http2 connection to one endpoint address, kept connected (see
 * createSessionConnection). It is the session manager of a Connect
 * transport, and the proxy's streams engine uses it for raw streams:
 * `openStream` opens a stream now on a ready connection (throws
 * CallNotSentError when it is not ready), the cheap path for a caller that
 * builds a fresh header object per call anyway; `request` waits for a
 * connection instead.
 */
export interface Http2Connection
  extends SessionConnection<http2.ClientHttp2Stream, RequestOptions>,
    Http2SessionManager {
  openStream(headers: http2.OutgoingHttpHeaders, options?: RequestOptions): http2.ClientHttp2Stream;
}

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_NO_ERROR } = http2.constants;

export function createHttp2Connection(options: Http2ConnectionOptions): Http2Connection {
  const authority = new URL(options.origin).origin;
  const connection = createSessionConnection<http2.ClientHttp2Session, http2.ClientHttp2Stream, RequestOptions>(
    options,
    {
      connect: (dial) => http2.connect(authority, { ...options.sessionOptions, createConnection: dial }),
      open(session, headers, requestOptions, closed) {
        const stream = session.request(headers as http2.OutgoingHttpHeaders, requestOptions);
        // Registered before the caller's own listeners, so the mark is on the
        // error by the time a transport turns it into a ConnectError.
        stream.on("error", (e: Error) => {
          if (stream.rstCode === NGHTTP2_REFUSED_STREAM) markNotSent(e);
          else if (session.destroyed) markConnectionLost(e);
        });
        // A stream cut by its connection dying closes with CANCEL and no error
        // event; Connect would report the user's code for cancellation. Counted
        // before the caller's listener runs, so a channel can tell.
        stream.on("close", () => closed(session.destroyed && stream.rstCode !== NGHTTP2_NO_ERROR));
        return stream;
      },
    },
  );
  return {
    ...connection,
    authority,
    openStream: connection.openStream as Http2Connection["openStream"],
    async request(method, path, headers, requestOptions) {
      // Ready (every call but the first ones): no extra await on the call path.
      if (connection.state() !== "ready") await connection.whenConnected();
      return connection.openStream({ ...headers, ":method": method, ":path": path }, requestOptions);
    },
    notifyResponseByteRead() {},
  };
}
