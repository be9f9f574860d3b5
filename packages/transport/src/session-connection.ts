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
import { CallNotSentError } from "./call-not-sent-error.js";
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

/** Options of a connection to one endpoint address, whatever HTTP/2 implementation carries it. */
export interface SessionConnectionOptions {
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
export type ConnectionEvent =
  | { type: "state"; state: ConnectivityState; error?: Error }
  /** The server sent GOAWAY: in-flight streams finish, a new connection is dialled. */
  | { type: "goaway"; code: number }
  /** An established connection was lost (closed, reset, ping timeout). */
  | { type: "lost"; error?: Error };

/**
 * The connection to one endpoint as the balancing core (@meshlite/pool) sees
 * it: kept connected while wanted, with a state, events and a count of the
 * streams its connections lost.
 */
export interface EndpointConnection {
  /** `host:port` of the address dialled. */
  readonly address: string;
  state(): ConnectivityState;
  /**
   * How many streams were cut because their connection died (reset, closed
   * without GOAWAY, keepalive timeout). A call whose connection lost streams
   * while it ran failed for that reason, whatever error code it shows.
   */
  lostStreams(): number;
  /** HTTP/2 connections open or being dialled to the address now (extra ones included, old ones finishing after GOAWAY not). */
  connectionCount(): number;
  /** Subscribes to state changes, GOAWAY and loss; returns an unsubscribe function. */
  subscribe(listener: (event: ConnectionEvent) => void): () => void;
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

/**
 * An EndpointConnection that opens streams of type `T` (with open options
 * `O`): node:http2's (createHttp2Connection) or another HTTP/2 client's.
 */
export interface SessionConnection<T, O = undefined> extends EndpointConnection {
  /**
   * Opens a stream now, on a ready connection; throws CallNotSentError when it
   * is not ready. `headers` carries `:method` and `:path` and is handed to the
   * session as it is, not copied.
   */
  openStream(headers: Record<string, unknown>, options?: O): T;
  /** Resolves once the connection is out of "connecting" (and dialling, when idle: first use outside a pool). */
  whenConnected(): Promise<void>;
}

/**
 * What a SessionConnection needs of one HTTP/2 client session: node:http2's
 * ClientHttp2Session has these members, and so does any session written to
 * look like it.
 */
export interface ClientSessionLike {
  readonly destroyed: boolean;
  /** No new streams can open on it (closing, or GOAWAY either way). */
  readonly closed: boolean;
  /** The HTTP/2 handshake has not completed. */
  readonly connecting: boolean;
  /** `remoteSettings`: the peer's SETTINGS (the first: usable); `goaway`: the peer's GOAWAY; `close`: last. */
  on(event: "remoteSettings", listener: (settings: { maxConcurrentStreams?: number }) => void): unknown;
  on(event: "goaway", listener: (code: number) => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  on(event: "close", listener: () => void): unknown;
  once(event: "remoteSettings", listener: () => void): unknown;
  ref(): void;
  unref(): void;
  ping(callback: (error: Error | null) => void): boolean;
  close(): void;
  destroy(error?: Error): void;
}

/** How a SessionConnection makes sessions and opens streams on them. */
export interface SessionDriver<S extends ClientSessionLike, T, O> {
  /** Opens a session over the socket that `dial` returns (called once, at once). */
  connect(dial: () => net.Socket): S;
  /**
   * Opens a stream on `session`; throws when the session cannot take one.
   * `closed` is called once when the stream closes, with whether its
   * connection died under it, before the stream's own close is reported.
   */
  open(session: S, headers: Record<string, unknown>, options: O | undefined, closed: (lost: boolean) => void): T;
}

/**
 * One HTTP/2 connection to one endpoint address, kept connected: it dials when
 * `connect()` is called, re-dials with backoff after a failure, replaces a
 * connection that got GOAWAY while its in-flight streams finish, dials extra
 * connections when the peer's stream limit is reached, and pings when
 * keepalive is on. `driver` brings the HTTP/2 implementation.
 */
export function createSessionConnection<S extends ClientSessionLike, T, O = undefined>(
  options: SessionConnectionOptions,
  driver: SessionDriver<S, T, O>,
): SessionConnection<T, O> {
  const origin = new URL(options.origin);
  const secure = origin.protocol === "https:";
  const address = formatHostPort(options.address.host, options.address.port);
  const connectTimeoutMs = options.connectTimeoutMs ?? 20_000;
  const backoff = createBackoff(options.backoff);
  const listeners = new Set<(event: ConnectionEvent) => void>();

  let state: ConnectivityState = "idle";
  let error: Error | undefined;
  let session: S | undefined;
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
  const infos = new Map<S, SessionInfo>();
  // Sessions dialled beside the main one (see maxConnections, minConnections), in dial order.
  const extras: S[] = [];
  const sessions = new Set<S>();
  let readyWaiters: Array<() => void> = [];
  // Timeouts that condemn a connection do not count time the caller's own
  // loop was stalled (see setLoopTimeout); taken while the connection is wanted.
  let stalls: EventLoopStalls | undefined;

  function emit(event: ConnectionEvent) {
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
      // No new streams go on this session; open ones finish (the session
      // closes after them). Streams above the GOAWAY's last stream id come
      // back as not sent.
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
  function openSession(): S {
    const s = driver.connect(dialSocket);
    sessions.add(s);
    stalls ??= acquireEventLoopStalls();
    const connectTimer = setLoopTimeout(
      () => s.destroy(new Error(`connect timeout: no HTTP/2 connection to ${address} within ${connectTimeoutMs} ms`)),
      connectTimeoutMs,
      stalls,
    );
    const info: SessionInfo = {
      streams: 0,
      limit: Number.POSITIVE_INFINITY,
      ready: false,
      // One per session, not one per stream: the call path allocates nothing for it.
      streamClosed: (lost) => {
        if (lost) lostStreams++;
        streamClosed(s, info);
      },
    };
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

  function forgetExtra(s: S) {
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
  function sessionFor(main: S): S {
    const mainInfo = infos.get(main) as SessionInfo;
    if (extras.length === 0 && minConnections === 1) {
      if (mainInfo.streams < mainInfo.limit || maxConnections === 1) return main;
      dialExtra();
      return main;
    }
    if (extras.length < minConnections - 1) dialExtra();
    let best = main;
    let bestInfo = mainInfo;
    let spare: S | undefined;
    let dialling = false;
    for (let i = 0; i < extras.length; i++) {
      const s = extras[i] as S;
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

  function startKeepalive(s: S, info: SessionInfo): NodeJS.Timeout | undefined {
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

  function openOn(s: S, headers: Record<string, unknown>, openOptions: O | undefined): T {
    const info = infos.get(s) as SessionInfo;
    if (info.streams++ === 0) {
      s.ref();
      if (info.idleTimer) clearTimeout(info.idleTimer);
      info.idleTimer = undefined;
    }
    try {
      return driver.open(s, headers, openOptions, info.streamClosed);
    } catch (e) {
      streamClosed(s, info);
      throw new CallNotSentError(`connection to ${address} cannot take new calls: ${String(e)}`, { cause: e });
    }
  }

  function streamClosed(s: S, info: SessionInfo) {
    if (--info.streams > 0 || s.destroyed) return;
    s.unref();
    // An extra beyond minConnections closes when it is no longer needed.
    if (extras.indexOf(s) >= minConnections - 1) {
      info.idleTimer = setTimeout(() => {
        if (info.streams === 0) s.close();
      }, extraIdleMs);
      info.idleTimer.unref();
    }
  }

  return {
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
    async whenConnected() {
      if (state === "connecting" || (state === "idle" && wanted)) {
        await waitForAttempt();
      }
      if (state === "idle" && !wanted) {
        // Used outside a pool: connect on first use.
        wanted = true;
        dial();
        await waitForAttempt();
      }
    },
    openStream(headers, openOptions) {
      if (state !== "ready" || session === undefined) {
        throw new CallNotSentError(`no connection to ${address} (${state}): ${error?.message ?? "not connected"}`, {
          cause: error,
        });
      }
      return openOn(sessionFor(session), headers, openOptions);
    },
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
              s.on("close", () => resolve());
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
  /** Told by the driver when one of its streams closed (`lost`: cut by the connection dying). */
  streamClosed: (lost: boolean) => void;
  /** Closes an idle extra session. */
  idleTimer?: NodeJS.Timeout;
  /** Sends its keepalive pings. */
  keepaliveTimer?: NodeJS.Timeout;
}
