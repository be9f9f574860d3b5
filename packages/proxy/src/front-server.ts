import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import { createAbusePenalties } from "./abuse-penalty.js";
import {
  type ClientGuard,
  type ClientGuardLimits,
  type ClientLimitName,
  guardClientSession,
  resetClientStream,
} from "./client-guard.js";
import type { Downstream } from "./downstream.js";
import { createServerSession, type ServerSession } from "./h2/server-session.js";
import type { ListenerTlsOptions, ProxyEngine } from "./proxy-options.js";
import { http2Settings, maxSessionMemoryMb } from "./upstream.js";

/** Options of createFrontServer. */
export interface FrontServerOptions {
  /** TLS with ALPN h2 and http/1.1; default: cleartext, h2c and HTTP/1.1 told apart by the connection preface. */
  tls?: ListenerTlsOptions;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per client connection. */
  maxConcurrentStreams: number;
  /** Header limit; the protocol-level limit is set wider so the proxy answers with a clear error instead. */
  maxHeaderBytes: number;
  /** Header field count limit; the protocol-level one is set wider, as for `maxHeaderBytes`. */
  maxHeaderPairs: number;
  /** What a client connection may do before it is cut off, and how long it may hold the proxy idle. */
  guard: ClientGuardLimits;
  /** How long an address whose connection was cut off for abuse is refused at accept, doubling on repeats; 0: never. */
  abusePenaltyMs: number;
  /** A client ran into a limit. */
  onLimit(limit: ClientLimitName): void;
  /** Who terminates HTTP/2: node:http2 ("streams", calls through onStream) or the frame engine ("frames", calls through onCall). */
  engine: ProxyEngine;
  onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void;
  /** A request on the frame engine. */
  onCall(down: Downstream): void;
  onRequest(req: http.IncomingMessage, res: http.ServerResponse): void;
  onError(message: string, error: Error): void;
}

/** The listener: HTTP/2 (h2c or TLS) and HTTP/1.1 on one port. */
export interface FrontServer {
  listen(host: string, port: number): Promise<net.AddressInfo>;
  /**
   * Stops accepting connections, sends GOAWAY on every HTTP/2 connection and
   * closes idle HTTP/1.1 ones; open calls go on.
   */
  shutdown(): void;
  /** Resolves once every client connection has closed (after shutdown), or after `timeoutMs`. */
  closed(timeoutMs: number): Promise<void>;
  /** Destroys every connection still open. */
  destroy(): void;
}

const preface = Buffer.from("PRI * HTTP/2.0");

// When a socket was accepted, for what is left of the handshake timeout once
// its HTTP/2 session starts. A property, not a WeakMap: `session.socket` is a
// proxy that reads the socket's properties but is not the socket.
const acceptedAt = Symbol("acceptedAt");
type AcceptedSocket = net.Socket & { [acceptedAt]?: number };

/** The limits that only abuse runs into: the client's address is refused for a while after. */
const abuseLimits: ReadonlySet<ClientLimitName> = new Set([
  "rapid_reset",
  "control_flood",
  "continuation_flood",
  "invalid_frames",
]);

export function createFrontServer(options: FrontServerOptions): FrontServer {
  const h2 = http2.createServer({
    settings: {
      ...http2Settings,
      maxConcurrentStreams: options.maxConcurrentStreams,
      // Wider than the proxy's own limit, so oversized headers reach the
      // proxy and get a gRPC error rather than a bare stream reset.
      maxHeaderListSize: Math.max(options.maxHeaderBytes * 4, 65_536),
    },
    maxHeaderListPairs: Math.max(options.maxHeaderPairs * 4, 512),
    maxSessionMemory: maxSessionMemoryMb,
  });
  const { handshakeTimeoutMs } = options.guard;
  const h1 = http.createServer({
    maxHeaderSize: options.maxHeaderBytes,
    keepAliveTimeout: 60_000,
    // Slowloris over HTTP/1.1: headers that do not arrive in time end the connection.
    ...(handshakeTimeoutMs > 0
      ? { headersTimeout: handshakeTimeoutMs, connectionsCheckingInterval: Math.min(1000, handshakeTimeoutMs) }
      : {}),
  });
  // node:http checks headersTimeout from a timer it starts on 'listening';
  // this server never listens (connections are handed to it), so say it does.
  // close() stops the timer again.
  if (handshakeTimeoutMs > 0) h1.emit("listening");
  // Wider than the proxy's own limit, as for HTTP/2.
  h1.maxHeadersCount = Math.max(options.maxHeaderPairs * 4, 512);
  const sessions = new Set<http2.ServerHttp2Session>();
  const frameSessions = new Set<ServerSession>();
  // Wider than the proxy's own limit, as for node:http2 below.
  const frameHeaderListSize = Math.max(options.maxHeaderBytes * 4, 65_536);
  const guards = new WeakMap<http2.Http2Session, ClientGuard>();
  const sockets = new Set<net.Socket>();
  let closing = false;
  let onSocketClosed: (() => void) | undefined;
  const penalties = createAbusePenalties({ baseMs: options.abusePenaltyMs });

  h2.on("stream", (stream, headers) => {
    if (closing) stream.session?.close();
    if (stream.session && guards.get(stream.session)?.cutOff) {
      stream.on("error", () => {});
      resetClientStream(stream, http2.constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    // One turn later, after the rest of what the socket delivered is read: a
    // stream the client reset in the same packets (HEADERS, DATA, RST_STREAM:
    // a rapid-reset attack) is gone by then and costs no upstream call. Sent at
    // once, each would become a call the upstream runs in full, since past the
    // reset budget (cancelStream) upstream cancels are deferred.
    // Until then nothing else listens: a reset with an error code must not throw.
    stream.on("error", noop);
    setImmediate(() => {
      if (stream.destroyed || stream.closed) return;
      options.onStream(stream, headers);
    });
  });
  h2.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", (e) => options.onError("client HTTP/2 connection error", e));
    const socket = session.socket as net.Socket | undefined;
    const since = (socket as AcceptedSocket | undefined)?.[acceptedAt] ?? performance.now();
    const left = handshakeTimeoutMs > 0 ? Math.max(1, handshakeTimeoutMs - (performance.now() - since)) : 0;
    guards.set(session, guardClientSession(session, options.guard, left, limitReporter(socket?.remoteAddress)));
    if (closing) session.close();
  });
  /** Reports a client's limits; the abuse limits also refuse its address for a while. */
  function limitReporter(address: string | undefined) {
    return (limit: ClientLimitName) => {
      if (address !== undefined && abuseLimits.has(limit)) penalties.penalize(address);
      options.onLimit(limit);
    };
  }

  function startFrameSession(socket: net.Socket) {
    const since = (socket as AcceptedSocket)[acceptedAt] ?? performance.now();
    const left = handshakeTimeoutMs > 0 ? Math.max(1, handshakeTimeoutMs - (performance.now() - since)) : 0;
    const session = createServerSession(socket, {
      initialWindowSize: http2Settings.initialWindowSize,
      maxConcurrentStreams: options.maxConcurrentStreams,
      maxHeaderListSize: frameHeaderListSize,
      guard: options.guard,
      firstCallWithinMs: left,
      onLimit: limitReporter(socket.remoteAddress),
      onStream: (down) => options.onCall(down),
      onClose: () => frameSessions.delete(session),
    });
    frameSessions.add(session);
    if (closing) session.shutdown();
  }

  h1.on("request", (req, res) => {
    if (closing) res.setHeader("connection", "close");
    options.onRequest(req, res);
  });
  h1.on("clientError", (e: Error & { code?: string }, socket: net.Socket) => {
    if (!socket.writable) return socket.destroy();
    const status =
      e.code === "HPE_HEADER_OVERFLOW"
        ? "431 Request Header Fields Too Large"
        : e.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? "408 Request Timeout"
          : "400 Bad Request";
    if (e.code === "ERR_HTTP_REQUEST_TIMEOUT") options.onLimit("handshake_timeout");
    socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: text/plain\r\n\r\n${e.message}\n`);
  });

  function dispatch(socket: net.Socket, first: Buffer | undefined, alpn: string | false | undefined) {
    clearTimeout(handshakeTimers.get(socket));
    if (first) socket.unshift(first);
    const isH2 =
      alpn === "h2" ||
      (alpn === undefined && first !== undefined && first.subarray(0, 3).equals(preface.subarray(0, 3)));
    if (isH2) {
      // The HTTP/2 session reads what is buffered (the peeked bytes) itself;
      // resuming would hand them to nobody.
      if (options.engine === "frames") startFrameSession(socket);
      else h2.emit("connection", socket);
    } else {
      h1.emit("connection", socket);
      socket.resume();
    }
  }

  // From accept until the protocol is known (the first bytes, or ALPN after
  // the TLS handshake): a connection that sends nothing is dropped.
  const handshakeTimers = new WeakMap<net.Socket, NodeJS.Timeout>();
  function accept(socket: net.Socket) {
    sockets.add(socket);
    (socket as AcceptedSocket)[acceptedAt] = performance.now();
    if (handshakeTimeoutMs > 0 && !options.tls) {
      const timer = setTimeout(() => {
        options.onLimit("handshake_timeout");
        socket.destroy();
      }, handshakeTimeoutMs);
      timer.unref();
      handshakeTimers.set(socket, timer);
    }
    socket.on("close", () => {
      clearTimeout(handshakeTimers.get(socket));
      sockets.delete(socket);
      onSocketClosed?.();
    });
    socket.on("error", () => {});
    socket.setNoDelay(true);
  }

  const server: net.Server = options.tls
    ? tls.createServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          ALPNProtocols: ["h2", "http/1.1"],
          ...(handshakeTimeoutMs > 0 ? { handshakeTimeout: handshakeTimeoutMs } : {}),
          ...(options.tls.clientCa !== undefined
            ? { ca: options.tls.clientCa, requestCert: true, rejectUnauthorized: true }
            : {}),
        },
        (socket) => {
          accept(socket);
          dispatch(socket, undefined, socket.alpnProtocol || "http/1.1");
        },
      )
    : net.createServer((socket) => {
        if (socket.destroyed) return; // refused by the "connection" listener ahead of this one
        accept(socket);
        // The HTTP/2 preface "PRI * HTTP/2.0" tells h2c apart from HTTP/1.1 methods.
        let seen: Buffer = Buffer.alloc(0);
        const onData = (chunk: Buffer) => {
          seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
          if (seen.length < 3) return;
          socket.off("data", onData);
          socket.pause();
          dispatch(socket, seen, undefined);
        };
        socket.on("data", onData);
      });
  // Ahead of TLS and of the protocol sniffing: a refused connection costs an
  // accept and a close. (tls.Server's own listener still sees the destroyed
  // socket; it ends as a tlsClientError, ECONNRESET, logged at debug.)
  server.prependListener("connection", (socket: net.Socket) => {
    if (socket.remoteAddress === undefined || !penalties.refuses(socket.remoteAddress)) return;
    options.onLimit("abuse_penalty");
    socket.on("error", () => {});
    socket.destroy();
  });
  server.on("tlsClientError", (e: Error & { code?: string }) => {
    if (e.code === "ERR_TLS_HANDSHAKE_TIMEOUT") options.onLimit("handshake_timeout");
    options.onError("TLS handshake with a client failed", e);
  });

  return {
    listen(host, port) {
      return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve(server.address() as net.AddressInfo);
        });
      });
    },
    shutdown() {
      closing = true;
      server.close();
      h1.close();
      for (const session of sessions) session.close();
      for (const session of frameSessions) session.shutdown();
      h1.closeIdleConnections();
    },
    closed(timeoutMs) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          onSocketClosed = undefined;
          resolve();
        }
        onSocketClosed = () => {
          // Calls have ended: HTTP/1.1 connections are idle now.
          h1.closeIdleConnections();
          if (sockets.size === 0) done();
        };
        onSocketClosed();
      });
    },
    destroy() {
      for (const session of sessions) session.destroy();
      for (const session of [...frameSessions]) session.destroy();
      for (const socket of sockets) socket.destroy();
      h1.closeAllConnections();
      h1.close();
    },
  };
}

function noop() {}
