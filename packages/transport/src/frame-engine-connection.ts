import type * as http2 from "node:http2";
import type * as net from "node:net";
import * as tls from "node:tls";
import { type ClientSession, createClientSession } from "./h2/client-session.js";
import type { H2StreamConnection } from "./h2-stream.js";
import type { Http2ConnectionOptions } from "./http2-connection.js";
import { createSessionConnection } from "./session-connection.js";

/** Options of the frame engine's connections beyond the pool's. */
export interface FrameEngineSettings {
  /** Our SETTINGS_INITIAL_WINDOW_SIZE: each response body's receive window. Default 4 MiB. */
  initialWindowSize?: number;
  /**
   * Response bytes a session may hold for consumers that have not taken them,
   * its connection window credited as they arrive. Default 64 MiB.
   */
  maxBufferedBytes?: number;
}

/**
 * An endpoint connection whose HTTP/2 sessions are meshlite's own client
 * sessions (the channel's for gRPC, and the proxy's `engine: "frames"`): the
 * same dialling, backoff, GOAWAY handling, extra connections and keepalive as
 * node:http2's (createSessionConnection), without node:http2's stream objects.
 */
export function createFrameEngineConnection(
  options: Http2ConnectionOptions,
  settings: FrameEngineSettings = {},
): H2StreamConnection {
  const origin = new URL(options.origin);
  const scheme = origin.protocol === "https:" ? "https" : "http";
  const connection = createSessionConnection<ClientSession, ReturnType<ClientSession["request"]>>(options, {
    connect: (dial) => {
      const socket = dial();
      const session = createClientSession(socket, {
        authority: origin.host,
        scheme,
        ...(settings.initialWindowSize !== undefined ? { initialWindowSize: settings.initialWindowSize } : {}),
        ...(settings.maxBufferedBytes !== undefined ? { maxBufferedBytes: settings.maxBufferedBytes } : {}),
      });
      if (socket instanceof tls.TLSSocket) checkAlpn(socket, session);
      return session;
    },
    open: (session, headers, _options, closed) => session.request(headers as http2.OutgoingHttpHeaders, closed),
  });
  return { ...connection, authority: origin.origin };
}

/** A TLS server that does not speak h2 (no ALPN, or http/1.1) fails the connection, as node:http2 does. */
function checkAlpn(socket: tls.TLSSocket, session: ClientSession) {
  (socket as net.Socket).once("secureConnect", () => {
    if (socket.alpnProtocol !== "h2") {
      session.destroy(new Error(`the server did not agree to HTTP/2 (ALPN: ${socket.alpnProtocol || "none"})`));
    }
  });
}
