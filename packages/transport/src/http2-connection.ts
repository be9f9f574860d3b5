import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import {
  acquireEventLoopStalls,
  type BackoffOptions,
  type ConnectivityState,
  createBackoff,
  type EventLoopStalls,
  formatHostPort,
  type HostPort,
  setLoopTimeout,
} from "@meshlite/core";
import { CallNotSentError, markConnectionLost, markNotSent } from "./call-not-sent-error.js";
import type { TlsOptions } from "./tls-options.js";

/** Keepalive pings on an HTTP/2 connection. */
export interface KeepaliveOptions {
  /** Send a PING this often while calls are open (or always, with `withoutCalls`). */
  intervalMs: number;
  /** Close the connection when a PING is not answered within this time. Default 20000 ms. */
  timeoutMs?: number;
  /** Ping also while no call is open (servers may refuse frequent idle pings). Default false. */
  withoutCalls?: boolean;
}

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
export interface Http2ConnectionOptions {
  /**
   * The origin calls are addressed to, `http://name:port` or `https://name:port`:
   * the `:authority` of every stream and, with https, the TLS server name.
   */
  origin: string;
  /** The address to dial, independent of the origin's host name. */
  address: HostPort;
  /** TLS settings, used when the origin is https. */
  tls?: TlsOptions;
  /** Give up on a connection attempt after this long, TLS and HTTP/2 handshake included. Default 20000 ms. */
  connectTimeoutMs?: number;
  /** Delay between failed attempts. Default: gRPC's (1 s, x1.6, jitter 0.2, 120 s max). */
  backoff?: BackoffOptions;
  /** Keepalive pings. Default: none. */
  keepalive?: KeepaliveOptions;
  /** Passed to http2.connect (settings, maxSessionMemory, ...). */
  sessionOptions?: http2.ClientSessionOptions;
  /**
   * The most HTTP/2 connections to the address: when the calls on the open
   * ones reach the peer's SETTINGS_MAX_CONCURRENT_STREAMS, another one is
   * dialled instead of queueing calls behind the limit. Default 4.
   */
  maxConnections?: number;
  /**
   * Connections kept open to the address, with calls spread over them: for a
   * single address that balances per connection (a ClusterIP Service, an L4
   * load balancer). Default 1.
   */
  minConnections?: number;
  /** A connection above `minConnections` closes once it had no call for this long. Default 30000 ms. */
  extraIdleMs?: number;
}

/** Why the connection changed state. */
export type Http2ConnectionEvent =
  | { type: "state"; state: ConnectivityState; error?: Error }
  /** The server sent GOAWAY: in-flight streams finish, a new connection is dialled. */
  | { type: "goaway"; code: number }
  /** An established connection was lost (closed, reset, ping timeout). */
  | { type: "lost"; error?: Error };

/**
 * One HTTP/2 connection to one endpoint address, kept connected: it dials when
 * `connect()` is called, re-dials with backoff after a failure, and replaces a
 * connection that got GOAWAY while its in-flight streams finish. It is the
 * session manager of a Connect transport, and the proxy uses it for raw streams.
 */
export interface Http2Connection extends Http2SessionManager {
  /** `host:port` of the address dialled. */
  readonly address: string;
  state(): ConnectivityState;
  /**
   * How many streams were cut because their connection died (reset, closed
   * without GOAWAY, keepalive timeout). A call whose connection lost streams
   * while it ran failed for that reason, whatever error code it shows.
   */
  lostStreams(): number;
  /**
   * Opens a stream now, on a ready connection; throws CallNotSentError when it
   * is not ready. `headers` carries `:method` and `:path` and is handed to
   * Node as it is, not copied: the cheap path for a proxy that builds a fresh
   * header object per call anyway. `request` waits for a connection instead.
   */
  openStream(
    headers: http2.OutgoingHttpHeaders,
    options?: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): http2.ClientHttp2Stream;
  /** HTTP/2 connections open or being dialled to the address now (extra ones included, old ones finishing after GOAWAY not). */
  connectionCount(): number;
  /** Subscribes to state changes, GOAWAY and loss; returns an unsubscribe function. */
  subscribe(listener: (event: Http2ConnectionEvent) => void): () => void;
  /** Starts connecting and keeps the connection up until closed. */
  connect(): void;
  /**
   * Lets the connection go without closing it for good: no new streams, open
   * streams finish, no re-dial; the state goes back to "idle" and `connect()`
   * dials again. For an endpoint that leaves a client's subset.
   */
  disconnect(): void;
  /**
   * Closes for good. Graceful (default): no new streams, open streams finish,
   * then the connection closes; `destroy: true` resets open streams at once.
   */
  close(options?: { destroy?: boolean }): Promise<void>;
}

const REFUSED_STREAM = http2.constants.NGHTTP2_REFUSED_STREAM;

export function createHttp2Connection(options: Http2ConnectionOptions): Http2Connection {
  const origin = new URL(options.origin);
  const authority = origin.origin;
  const secure = origin.protocol === "https:";
  const address = formatHostPort(options.address.host, options.address.port);
  const connectTimeoutMs = options.connectTimeoutMs ?? 20_000;
  const backoff = createBackoff(options.backoff);
  const listeners = new Set<(event: Http2ConnectionEvent) => void>();

  let state: ConnectivityState = "idle";
  let error: Error | undefined;
  let session: http2.ClientHttp2Session | undefined;
  let wanted = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let lostStreams = 0;
  const maxConnections = options.maxConnections ?? 4;
  const minConnections = options.minConnections ?? 1;
  const extraIdleMs = options.extraIdleMs ?? 30_000;
  if (
    !(
      Number.isInteger(minConnections) &&
      minConnections >= 1 &&
      Number.isInteger(maxConnections) &&
      maxConnections >= minConnections
    )
  ) {
    throw new RangeError(
      `connection to ${address}: minConnections and maxConnections must be whole numbers with 1 <= minConnections <= maxConnections, got ${String(minConnections)} and ${String(maxConnections)}`,
    );
  }
  // Streams open on each session and the peer's stream limit, read once per SETTINGS frame.
  const infos = new Map<http2.ClientHttp2Session, SessionInfo>();
  // Sessions dialled beside the main one (see maxConnections, minConnections), in dial order.
  const extras: http2.ClientHttp2Session[] = [];
  const sessions = new Set<http2.ClientHttp2Session>();
  let readyWaiters: Array<() => void> = [];
  // Timeouts that condemn a connection do not count time the caller's own
  // loop was stalled (see setLoopTimeout); taken while the connection is wanted.
  let stalls: EventLoopStalls | undefined;

  function emit(event: Http2ConnectionEvent) {
    for (const listener of listeners) {
      listener(event);
    }
  }
  function setState(next: ConnectivityState, cause?: Error) {
    if (cause) error = cause;
    if (next === state) return;
    state = next;
    if (next !== "connecting") {
      const waiters = readyWaiters;
      readyWaiters = [];
      for (const wake of waiters) wake();
    }
    emit({ type: "state", state: next, ...(cause ? { error: cause } : {}) });
  }

  function dialSocket(): net.Socket {
    const { host, port } = options.address;
    if (!secure) {
      return net.connect({ host, port });
    }
    const serverName = options.tls?.serverName ?? origin.hostname.replace(/^\[|\]$/g, "");
    return tls.connect({
      host,
      port,
      // Node refuses an IP address as SNI; certificate checks still use it.
      ...(net.isIP(serverName) ? {} : { servername: serverName }),
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(serverName, cert),
      ALPNProtocols: ["h2"],
      ...(options.tls?.ca !== undefined ? { ca: options.tls.ca } : {}),
      ...(options.tls?.cert !== undefined ? { cert: options.tls.cert } : {}),
      ...(options.tls?.key !== undefined ? { key: options.tls.key } : {}),
      rejectUnauthorized: options.tls?.rejectUnauthorized ?? true,
    });
  }

  function dial() {
    retryTimer = undefined;
    if (!wanted) return;
    setState("connecting");
    const s = openSession();
    session = s;
    let established = false;
    s.once("remoteSettings", () => {
      if (session !== s) return;
      established = true;
      backoff.reset();
      error = undefined;
      setState("ready");
      while (extras.length < minConnections - 1) dialExtra();
    });
    s.on("goaway", (code) => {
      if (session !== s) return;
      // No new streams go on this session; open ones finish (Node closes it
      // after them). Streams above the GOAWAY's last stream id come back as
      // REFUSED_STREAM and count as not sent.
      session = undefined;
      emit({ type: "goaway", code });
      setState("idle");
      if (wanted) dial();
    });
    s.on("error", (e: Error) => {
      // An old session finishing after GOAWAY does not speak for the current one.
      if (session === s) error = e;
    });
    s.on("close", () => {
      if (session !== s) return;
      session = undefined;
      const cause = error ?? new Error(`connection to ${address} closed`);
      if (!wanted) {
        setState("shutdown");
        return;
      }
      if (established) {
        emit({ type: "lost", error: cause });
        // A connection that was up is re-dialled at once; a failure after that backs off.
        setState("idle", cause);
        dial();
        return;
      }
      setState("transient-failure", cause);
      retryTimer = setTimeout(dial, backoff.next());
      retryTimer.unref();
    });
  }

  /**
   * A new session to the address, tracked until it closes: unref'd while it
   * has no streams, given up after `connectTimeoutMs` without the peer's
   * SETTINGS, pinged when keepalive is on.
   */
  function openSession(): http2.ClientHttp2Session {
    const s = http2.connect(authority, { ...options.sessionOptions, createConnection: dialSocket });
    sessions.add(s);
    stalls ??= acquireEventLoopStalls();
    const connectTimer = setLoopTimeout(
      () => s.destroy(new Error(`connect timeout: no HTTP/2 connection to ${address} within ${connectTimeoutMs} ms`)),
      connectTimeoutMs,
      stalls,
    );
    const info: SessionInfo = { streams: 0, limit: Number.POSITIVE_INFINITY, ready: false };
    infos.set(s, info);
    s.unref();
    s.on("remoteSettings", (settings) => {
      connectTimer.clear();
      info.ready = true;
      info.limit = settings.maxConcurrentStreams ?? Number.POSITIVE_INFINITY;
    });
    s.on("close", () => {
      connectTimer.clear();
      if (info.idleTimer) clearTimeout(info.idleTimer);
      if (info.keepaliveTimer) clearInterval(info.keepaliveTimer);
      sessions.delete(s);
      infos.delete(s);
      forgetExtra(s);
    });
    info.keepaliveTimer = startKeepalive(s, info);
    return s;
  }

  function forgetExtra(s: http2.ClientHttp2Session) {
    const i = extras.indexOf(s);
    if (i >= 0) extras.splice(i, 1);
  }

  /**
   * Dials one more session beside the main one. It takes calls once ready;
   * GOAWAY or a failure just removes it (the main session carries the
   * connection's state, and a new extra is dialled when one is needed).
   */
  function dialExtra() {
    const s = openSession();
    extras.push(s);
    s.on("goaway", () => forgetExtra(s));
    s.on("error", () => {});
  }

  /**
   * The session for a new stream. The main one while it is under the peer's
   * stream limit (and `minConnections` is 1); else the least busy ready
   * session among the first `minConnections`, then any extra under its
   * limit; when all are full, another session is dialled (up to
   * `maxConnections`) and the stream waits on the least busy one meanwhile.
   */
  function sessionFor(main: http2.ClientHttp2Session): http2.ClientHttp2Session {
    const mainInfo = infos.get(main) as SessionInfo;
    if (extras.length === 0 && minConnections === 1) {
      if (mainInfo.streams < mainInfo.limit || maxConnections === 1) return main;
      dialExtra();
      return main;
    }
    if (extras.length < minConnections - 1) dialExtra();
    let best = main;
    let bestInfo = mainInfo;
    let spare: http2.ClientHttp2Session | undefined;
    let dialling = false;
    for (let i = 0; i < extras.length; i++) {
      const s = extras[i] as http2.ClientHttp2Session;
      const info = infos.get(s);
      if (!info?.ready) dialling = true;
      if (!info?.ready || s.closed || s.destroyed) continue;
      if (i < minConnections - 1) {
        if (info.streams < bestInfo.streams) {
          best = s;
          bestInfo = info;
        }
      } else if (spare === undefined && info.streams < info.limit) {
        spare = s;
      }
    }
    if (bestInfo.streams < bestInfo.limit) return best;
    if (spare) return spare;
    // One more at a time: a burst does not dial them all at once.
    if (!dialling && extras.length + 1 < maxConnections) dialExtra();
    return best;
  }

  function startKeepalive(s: http2.ClientHttp2Session, info: SessionInfo): NodeJS.Timeout | undefined {
    const keepalive = options.keepalive;
    if (!keepalive) return undefined;
    const timeoutMs = keepalive.timeoutMs ?? 20_000;
    let outstanding = false;
    const timer = setInterval(() => {
      if (outstanding || s.destroyed || (!keepalive.withoutCalls && info.streams === 0) || !stalls) return;
      const deadline = setLoopTimeout(
        () => s.destroy(new Error(`keepalive ping to ${address} not answered within ${timeoutMs} ms`)),
        timeoutMs,
        stalls,
      );
      const sent = s.ping((err) => {
        outstanding = false;
        deadline.clear();
        if (err && !s.destroyed) s.destroy(err);
      });
      if (sent) outstanding = true;
      else deadline.clear();
    }, keepalive.intervalMs);
    timer.unref();
    return timer;
  }

  function waitForAttempt(): Promise<void> {
    return new Promise((resolve) => readyWaiters.push(resolve));
  }

  function openOn(
    s: http2.ClientHttp2Session,
    headers: http2.OutgoingHttpHeaders,
    requestOptions: Omit<http2.ClientSessionRequestOptions, "signal"> | undefined,
  ): http2.ClientHttp2Stream {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = s.request(headers, requestOptions);
    } catch (e) {
      throw new CallNotSentError(`connection to ${address} cannot take new calls: ${String(e)}`, { cause: e });
    }
    const info = infos.get(s) as SessionInfo;
    if (info.streams++ === 0) {
      s.ref();
      if (info.idleTimer) clearTimeout(info.idleTimer);
      info.idleTimer = undefined;
    }
    // Registered before the transport's own listener, so the mark is on the
    // error by the time the transport turns it into a ConnectError.
    stream.on("error", (e: Error) => {
      if (stream.rstCode === REFUSED_STREAM) markNotSent(e);
      else if (s.destroyed) markConnectionLost(e);
    });
    stream.on("close", () => {
      // A stream cut by its connection dying closes with CANCEL and no error
      // event; Connect would report the user's code for cancellation. Counted
      // here (before the transport's listener runs) so the channel can tell.
      if (s.destroyed && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) lostStreams++;
      if (--info.streams === 0 && !s.destroyed) {
        s.unref();
        // An extra beyond minConnections closes when it is no longer needed.
        if (extras.indexOf(s) >= minConnections - 1) {
          info.idleTimer = setTimeout(() => {
            if (info.streams === 0) s.close();
          }, extraIdleMs);
          info.idleTimer.unref();
        }
      }
    });
    return stream;
  }

  function openReady(
    headers: http2.OutgoingHttpHeaders,
    requestOptions?: Omit<http2.ClientSessionRequestOptions, "signal">,
  ): http2.ClientHttp2Stream {
    if (state !== "ready" || session === undefined) {
      throw new CallNotSentError(`no connection to ${address} (${state}): ${error?.message ?? "not connected"}`, {
        cause: error,
      });
    }
    return openOn(sessionFor(session), headers, requestOptions);
  }

  return {
    authority,
    address,
    state: () => state,
    lostStreams: () => lostStreams,
    connectionCount: () => (session ? 1 : 0) + extras.length,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    connect() {
      if (state === "shutdown" || wanted) return;
      wanted = true;
      dial();
    },
    disconnect() {
      if (state === "shutdown" || !wanted) return;
      wanted = false;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      const open = [...sessions];
      session = undefined;
      for (const s of open) {
        if (s.destroyed) continue;
        // A session still connecting has no streams to let finish.
        if (s.connecting) s.destroy();
        else s.close();
      }
      stalls?.release();
      stalls = undefined;
      setState("idle");
    },
    async request(method, path, headers, requestOptions) {
      if (state === "connecting" || (state === "idle" && wanted)) {
        await waitForAttempt();
      }
      if (state === "idle" && !wanted) {
        // Used outside a channel: connect on first use.
        wanted = true;
        dial();
        await waitForAttempt();
      }
      return openReady({ ...headers, ":method": method, ":path": path }, requestOptions);
    },
    openStream: openReady,
    notifyResponseByteRead() {},
    async close(closeOptions) {
      wanted = false;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      const open = [...sessions];
      session = undefined;
      setState("shutdown");
      stalls?.release();
      await Promise.all(
        open.map(
          (s) =>
            new Promise<void>((resolve) => {
              if (s.destroyed) return resolve();
              s.once("close", () => resolve());
              // A session still connecting has no streams to let finish.
              if (closeOptions?.destroy || s.connecting) s.destroy();
              else s.close();
            }),
        ),
      );
    },
  };
}

/** What a connection knows of one of its sessions. */
interface SessionInfo {
  /** Streams open on it. */
  streams: number;
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until its SETTINGS arrive). */
  limit: number;
  /** Its SETTINGS arrived: it takes streams. */
  ready: boolean;
  /** Closes an idle extra session. */
  idleTimer?: NodeJS.Timeout;
  /** Sends its keepalive pings. */
  keepaliveTimer?: NodeJS.Timeout;
}
