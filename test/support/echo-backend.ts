import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EchoService } from "../../gen/meshlite/echo/v1/echo_pb.js";

/** Options of a test backend. */
export interface EchoBackendOptions {
  /** Address to listen on. Default 127.0.0.1. Every 127.0.0.N binds on Linux. */
  host?: string;
  /** Port; default 0 (any free port). */
  port?: number;
  /** Name reported in responses; default host:port. */
  name?: string;
  /** Extra latency added to every call (and every stream message). Default 0. */
  delayMs?: number;
  /** Serve TLS with this key and certificate. */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer; requestCert?: boolean };
  /** SETTINGS_MAX_CONCURRENT_STREAMS the server announces. Default: Node's (unlimited). */
  maxConcurrentStreams?: number;
  /** Server interceptors (connect-node's). Default none. */
  interceptors?: Interceptor[];
}

/** A real HTTP/2 server implementing EchoService for all three protocols. */
export interface EchoBackend {
  readonly host: string;
  readonly port: number;
  /** `host:port` */
  readonly address: string;
  readonly name: string;
  /** Calls started on this backend, by method name. */
  readonly calls: Map<string, number>;
  /** The deadline (ms) each call arrived with, in order; undefined for none. */
  readonly timeouts: Array<number | undefined>;
  /** Total calls started. */
  totalCalls(): number;
  /** Calls currently running. */
  inFlight(): number;
  /** HTTP/2 connections open now. */
  openConnections(): number;
  /** HTTP/2 connections accepted since the start. */
  acceptedConnections(): number;
  setDelay(ms: number): void;
  /** Makes every following call fail with this code (0 to stop). */
  setFailCode(code: Code | 0): void;
  /** Makes every n-th call fail with this code (n = 0 to stop). */
  setFailEvery(n: number, code: Code): void;
  /**
   * A cold start from now on: unary echo calls take `extraMs` more, falling
   * linearly to 0 over `durationMs` (JIT warm-up, cold caches). 0 to stop.
   */
  setWarmup(extraMs: number, durationMs: number): void;
  /**
   * Sheds load: this share of unary echo calls (0-1, at random) fails at once,
   * before any delay, with `code` (RESOURCE_EXHAUSTED by default). 0 to stop.
   */
  setShed(share: number, code?: Code): void;
  /** Sends GOAWAY on every open connection (in-flight calls finish) but keeps listening. */
  goaway(): void;
  /** Graceful stop: GOAWAY, wait for in-flight calls, close. */
  close(): Promise<void>;
  /** Abrupt stop: destroy every connection at once. */
  kill(): Promise<void>;
  /** The underlying server. */
  readonly server: http2.Http2Server | http2.Http2SecureServer;
}

export async function startEchoBackend(options: EchoBackendOptions = {}): Promise<EchoBackend> {
  const host = options.host ?? "127.0.0.1";
  let delayMs = options.delayMs ?? 0;
  let failCode: Code | 0 = 0;
  let failEvery = { n: 0, code: Code.Unknown, seen: 0 };
  let warmup = { extraMs: 0, durationMs: 0, from: 0 };
  let shed = { share: 0, code: Code.ResourceExhausted };
  let running = 0;
  const calls = new Map<string, number>();
  const timeouts: Array<number | undefined> = [];
  let name = options.name ?? "";
  const sessions = new Set<http2.Http2Session>();
  let accepted = 0;

  function count(method: string) {
    calls.set(method, (calls.get(method) ?? 0) + 1);
  }
  async function pause(ms: number, signal: AbortSignal) {
    if (ms <= 0) return;
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(new ConnectError("canceled", Code.Canceled));
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
  // A message "pushback:N" fails the call with UNAVAILABLE and grpc-retry-pushback-ms: N.
  function maybePushback(message: string) {
    if (message.startsWith("pushback:")) {
      throw new ConnectError("pushing back", Code.Unavailable, { "grpc-retry-pushback-ms": message.slice(9) });
    }
  }
  /** The cold-start delay now (see setWarmup). */
  function warmupMs(): number {
    if (warmup.extraMs === 0) return 0;
    const left = 1 - (performance.now() - warmup.from) / warmup.durationMs;
    return left > 0 ? warmup.extraMs * left : 0;
  }
  function maybeShed() {
    if (shed.share > 0 && Math.random() < shed.share) {
      throw new ConnectError(`shedding load (${Math.round(shed.share * 100)}%) on ${name}`, shed.code);
    }
  }
  function maybeFail(requested: number) {
    const everyNth = failEvery.n > 0 && ++failEvery.seen % failEvery.n === 0 ? failEvery.code : 0;
    const code = requested || failCode || everyNth;
    if (code) {
      throw new ConnectError(`failing as asked (code ${code}) on ${name}`, code as Code);
    }
  }
  async function track<T>(method: string, fn: () => Promise<T>): Promise<T> {
    count(method);
    running++;
    try {
      return await fn();
    } finally {
      running--;
    }
  }
  async function* trackStream<T>(method: string, fn: () => AsyncIterable<T>): AsyncIterable<T> {
    count(method);
    running++;
    try {
      yield* fn();
    } finally {
      running--;
    }
  }

  const routes = (router: ConnectRouter) =>
    router.service(EchoService, {
      echo: (req, ctx) =>
        track("Echo", async () => {
          maybeShed();
          await pause((req.delayMs || delayMs) + warmupMs(), ctx.signal);
          maybeFail(req.failCode);
          return { message: req.message, server: name, payload: req.payload };
        }),
      echoIdempotent: (req, ctx) =>
        track("EchoIdempotent", async () => {
          timeouts.push(ctx.timeoutMs());
          maybePushback(req.message);
          await pause(req.delayMs || delayMs, ctx.signal);
          maybeFail(req.failCode);
          return { message: req.message, server: name, payload: req.payload };
        }),
      serverStream: (req, ctx) =>
        trackStream("ServerStream", async function* () {
          maybeFail(req.failCode);
          for (let index = 0; index < req.count; index++) {
            await pause(req.delayMs || delayMs, ctx.signal);
            yield { message: req.message, server: name, index };
          }
        }),
      clientStream: (reqs, ctx) =>
        track("ClientStream", async () => {
          const parts: string[] = [];
          for await (const req of reqs) {
            maybeFail(req.failCode);
            parts.push(req.message);
          }
          await pause(delayMs, ctx.signal);
          return { message: parts.join(","), server: name, index: parts.length };
        }),
      bidi: (reqs, ctx) =>
        trackStream("Bidi", async function* () {
          let index = 0;
          for await (const req of reqs) {
            maybeFail(req.failCode);
            await pause(req.delayMs || delayMs, ctx.signal);
            yield { message: req.message, server: name, index: index++, payload: req.payload };
          }
        }),
    });

  const settings =
    options.maxConcurrentStreams !== undefined ? { maxConcurrentStreams: options.maxConcurrentStreams } : {};
  const handler = connectNodeAdapter({ routes, interceptors: options.interceptors ?? [] });
  const server = options.tls
    ? http2.createSecureServer(
        {
          key: options.tls.key,
          cert: options.tls.cert,
          ...(options.tls.ca ? { ca: options.tls.ca } : {}),
          requestCert: options.tls.requestCert ?? false,
          rejectUnauthorized: options.tls.requestCert ?? false,
          allowHTTP1: true,
          settings,
        },
        handler,
      )
    : http2.createServer({ settings }, handler);
  server.on("session", (session) => {
    sessions.add(session);
    accepted++;
    session.on("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const address = `${host}:${port}`;
  if (name === "") name = address;

  let closed: Promise<void> | undefined;
  return {
    host,
    port,
    address,
    name,
    calls,
    timeouts,
    server,
    totalCalls: () => [...calls.values()].reduce((a, b) => a + b, 0),
    inFlight: () => running,
    openConnections: () => sessions.size,
    acceptedConnections: () => accepted,
    setDelay(ms) {
      delayMs = ms;
    },
    setFailCode(code) {
      failCode = code;
    },
    setFailEvery(n, code) {
      failEvery = { n, code, seen: 0 };
    },
    setWarmup(extraMs, durationMs) {
      warmup = { extraMs, durationMs, from: performance.now() };
    },
    setShed(share, code = Code.ResourceExhausted) {
      shed = { share, code };
    },
    goaway() {
      for (const session of sessions) session.close();
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) {
          session.close();
        }
      });
      return closed;
    },
    kill() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) {
          session.destroy();
        }
      });
      return closed;
    },
  };
}
