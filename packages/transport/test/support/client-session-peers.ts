import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { type ClientSession, type ClientSessionOptions, createClientSession } from "../../src/h2/client-session.js";
import type { ClientStream } from "../../src/h2/client-stream.js";
import type { H2Headers, H2StreamClose, H2StreamEvents } from "../../src/h2-stream.js";
import type { Cleanups } from "./loopback-server.js";

export const host = "127.0.0.1";

/** A node:http2 server on loopback (h2c, or TLS with `tls` given); `onStream` answers each request. */
export interface NodeServer {
  port: number;
  /** Its sessions so far (one per client connection). */
  sessions: http2.ServerHttp2Session[];
  /** Server-side sockets that closed. */
  closedSockets(): number;
  /** Destroys the server's sockets now (a crashed server). */
  destroySockets(): void;
}

export async function startNodeServer(
  cleanups: Cleanups,
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
  options: { tls?: { key: string; cert: string }; settings?: http2.Settings } = {},
): Promise<NodeServer> {
  const serverOptions = { ...(options.settings ? { settings: options.settings } : {}) };
  const server = options.tls
    ? http2.createSecureServer({ ...serverOptions, key: options.tls.key, cert: options.tls.cert })
    : http2.createServer(serverOptions);
  const sockets = new Set<net.Socket>();
  const served: NodeServer = {
    port: 0,
    sessions: [],
    closedSockets: () => closed,
    destroySockets: () => {
      for (const s of sockets) s.destroy();
    },
  };
  let closed = 0;
  server.on(options.tls ? "secureConnection" : "connection", (socket: net.Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("session", (s) => {
    served.sessions.push(s);
    s.on("error", () => {});
    s.socket.on("close", () => closed++);
  });
  server.on("stream", (stream, headers) => {
    stream.on("error", () => {});
    onStream(stream, headers);
  });
  server.listen(0, host);
  await once(server, "listening");
  served.port = (server.address() as net.AddressInfo).port;
  cleanups.push(async () => {
    for (const s of served.sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return served;
}

/** A client session of the frame engine to `port` on loopback; its errors are collected. */
export async function openSession(
  cleanups: Cleanups,
  port: number,
  options: Partial<ClientSessionOptions> & { ca?: string } = {},
): Promise<{ session: ClientSession; errors: Error[] }> {
  const { ca, ...sessionOptions } = options;
  const socket: net.Socket =
    ca !== undefined ? tls.connect({ host, port, ca, ALPNProtocols: ["h2"] }) : net.connect({ host, port });
  await once(socket, ca !== undefined ? "secureConnect" : "connect");
  if (ca !== undefined && (socket as tls.TLSSocket).alpnProtocol !== "h2") throw new Error("ALPN did not agree on h2");
  const session = createClientSession(socket, { authority: `${host}:${port}`, ...sessionOptions });
  const errors: Error[] = [];
  session.on("error", (e: Error) => errors.push(e));
  cleanups.push(() => session.destroy());
  return { session, errors };
}

/** Resolves once the session got the server's first SETTINGS. */
export async function ready(session: ClientSession): Promise<void> {
  if (!session.connecting) return;
  await once(session, "remoteSettings");
}

/** What a stream told its consumer, and checks of the contract's order (nothing after close, close once). */
export interface Collected {
  /** Event names in order. */
  readonly order: string[];
  headers: H2Headers | undefined;
  endStream: boolean | undefined;
  readonly chunks: Buffer[];
  trailers: H2Headers | undefined;
  outcome: H2StreamClose | undefined;
  /** Contract violations seen (an event after close, ...). */
  readonly violations: string[];
  /** Resolves with the outcome at close. */
  readonly closed: Promise<H2StreamClose>;
  body(): Buffer;
}

/** Listens to `stream`, recording everything; `hooks` run after each event is recorded. */
export function collect(stream: ClientStream, hooks: Partial<H2StreamEvents> = {}): Collected {
  let resolveClosed: (o: H2StreamClose) => void = () => {};
  const c: Collected = {
    order: [],
    headers: undefined,
    endStream: undefined,
    chunks: [],
    trailers: undefined,
    outcome: undefined,
    violations: [],
    closed: new Promise((resolve) => {
      resolveClosed = resolve;
    }),
    body: () => Buffer.concat(c.chunks),
  };
  const seen = (name: string) => {
    if (c.outcome !== undefined) c.violations.push(`${name} after close`);
    c.order.push(name);
  };
  stream.listen({
    response(headers, endStream) {
      seen("response");
      c.headers = headers;
      c.endStream = endStream;
      hooks.response?.(headers, endStream);
    },
    data(chunk) {
      seen("data");
      if (c.headers === undefined) c.violations.push("data before response");
      c.chunks.push(chunk);
      hooks.data?.(chunk);
    },
    trailers(trailers) {
      seen("trailers");
      c.trailers = trailers;
      hooks.trailers?.(trailers);
    },
    end() {
      seen("end");
      hooks.end?.();
    },
    close(outcome) {
      seen("close");
      c.outcome = outcome;
      hooks.close?.(outcome);
      resolveClosed(outcome);
    },
  });
  return c;
}

/** The order of a complete response with `n` data events: response, data x n, trailers?, end, close. */
export function responseOrder(dataEvents: number, trailers: boolean): string[] {
  return ["response", ...Array<string>(dataEvents).fill("data"), ...(trailers ? ["trailers"] : []), "end", "close"];
}

/** Collapses runs of "data" to one, for comparing orders whatever the chunking. */
export function squash(order: readonly string[]): string[] {
  return order.filter((e, i) => e !== "data" || order[i - 1] !== "data");
}

/** Resolves once a PING's ACK came: the server has sent everything it sent before answering. */
export function pingRoundTrip(session: ClientSession): Promise<number> {
  return new Promise((resolve, reject) => {
    const sent = session.ping((err, ms) => (err ? reject(err) : resolve(ms)));
    if (!sent) reject(new Error("PING not sent"));
  });
}

/** A gRPC message in its 5-byte envelope. */
export function envelope(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** The messages of a gRPC body. */
export function unenvelope(body: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i + 5 <= body.length; ) {
    const n = body.readUInt32BE(i + 1);
    out.push(body.subarray(i + 5, i + 5 + n));
    i += 5 + n;
  }
  return out;
}

/** A deterministic pseudo-random body (so a checksum catches reordering and loss). */
export function patterned(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}
