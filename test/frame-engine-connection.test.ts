// The frame engine's upstream connection (engine "frames"): the shared
// connection layer (createSessionConnection) driving the frame engine's client
// sessions against real node:http2 servers, h2c and TLS.
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import {
  type ConnectionEvent,
  createFrameEngineConnection,
  type H2Headers,
  type H2StreamClose,
  type H2StreamConnection,
} from "@meshlite/transport/connection";
import { afterEach, describe, expect, it } from "vitest";
import { makeCerts } from "./support/certs.js";
import { waitFor } from "./support/wait-for.js";

const settings = { initialWindowSize: 4 * 1024 * 1024 };

interface Answer {
  headers: H2Headers;
  body: Buffer;
  trailers: H2Headers | undefined;
  close: H2StreamClose;
}

/** One POST with `body` on `connection`, read to its close. */
function call(connection: H2StreamConnection, body: string): Promise<Answer> {
  return new Promise((resolve) => {
    const stream = connection.openStream({ ":method": "POST", ":path": "/echo" });
    let headers: H2Headers = {};
    let trailers: H2Headers | undefined;
    const chunks: Buffer[] = [];
    stream.listen({
      response: (h) => {
        headers = h;
      },
      data: (chunk) => chunks.push(chunk),
      trailers: (t) => {
        trailers = t;
      },
      end: () => {},
      close: (close) => resolve({ headers, body: Buffer.concat(chunks), trailers, close }),
    });
    stream.end(Buffer.from(body));
  });
}

function stateOf(connection: H2StreamConnection, wanted: string): Promise<void> {
  return new Promise((resolve) => {
    if (connection.state() === wanted) return resolve();
    const unsubscribe = connection.subscribe((event) => {
      if (event.type === "state" && event.state === wanted) {
        unsubscribe();
        resolve();
      }
    });
  });
}

describe("frame engine upstream connection", () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  /** An echo server: answers each stream with its body and a trailer naming the server's session. */
  async function startEcho(
    server: http2.Http2Server | http2.Http2SecureServer,
    host: string,
  ): Promise<{ port: number; sessions: http2.Http2Session[] }> {
    const sessions: http2.Http2Session[] = [];
    server.on("session", (s) => sessions.push(s));
    server.on("stream", (stream) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        stream.respond({ ":status": 200, "content-type": "text/plain" }, { waitForTrailers: true });
        stream.on("wantTrailers", () =>
          stream.sendTrailers({ "x-session": String(sessions.indexOf(stream.session!)) }),
        );
        stream.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, host, resolve));
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sessions) s.destroy();
          server.close(() => resolve());
        }),
    );
    return { port: (server.address() as AddressInfo).port, sessions };
  }

  it("connects over h2c, carries calls with their trailers, and closes leaving the server no session", async () => {
    const { port, sessions } = await startEcho(http2.createServer(), "127.0.0.81");
    const connection = createFrameEngineConnection(
      { origin: `http://echo.test:${port}`, address: { host: "127.0.0.81", port } },
      settings,
    );
    cleanup.push(() => connection.close({ destroy: true }));
    connection.connect();
    await stateOf(connection, "ready");
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => call(connection, `call ${i}`)));
    answers.forEach((a, i) => {
      expect(Number(a.headers[":status"])).toBe(200);
      expect(a.body.toString()).toBe(`call ${i}`);
      expect(a.trailers?.["x-session"]).toBe("0");
      expect(a.close).toMatchObject({ rstCode: 0, notSent: false, connectionLost: false });
    });
    expect(sessions).toHaveLength(1);
    await connection.close();
    await waitFor("the server's session to close", () => sessions[0]!.closed || sessions[0]!.destroyed);
  });

  it("dials a new session after the server's GOAWAY, and calls go on without a failure", async () => {
    const { port, sessions } = await startEcho(http2.createServer(), "127.0.0.82");
    const connection = createFrameEngineConnection(
      { origin: `http://echo.test:${port}`, address: { host: "127.0.0.82", port } },
      settings,
    );
    cleanup.push(() => connection.close({ destroy: true }));
    const events: ConnectionEvent["type"][] = [];
    connection.subscribe((e) => events.push(e.type));
    connection.connect();
    await stateOf(connection, "ready");
    expect((await call(connection, "before")).trailers?.["x-session"]).toBe("0");
    sessions[0]!.goaway(http2.constants.NGHTTP2_NO_ERROR);
    await waitFor("the GOAWAY", () => events.includes("goaway"));
    await stateOf(connection, "ready");
    const after = await call(connection, "after");
    expect(after.body.toString()).toBe("after");
    expect(after.trailers?.["x-session"]).toBe("1");
    expect(events).not.toContain("lost");
  });

  it("opens another session when the server's SETTINGS_MAX_CONCURRENT_STREAMS is reached, and honours the limit on each", async () => {
    const server = http2.createServer({ settings: { maxConcurrentStreams: 1 } });
    const sessions: http2.Http2Session[] = [];
    const open = new Map<http2.Http2Session, number>();
    let mostOpen = 0;
    const held: Array<() => void> = [];
    let release = false;
    server.on("session", (s) => sessions.push(s));
    server.on("stream", (stream) => {
      const session = stream.session!;
      open.set(session, (open.get(session) ?? 0) + 1);
      mostOpen = Math.max(mostOpen, open.get(session)!);
      stream.on("close", () => open.set(session, open.get(session)! - 1));
      stream.resume();
      const answer = () => {
        stream.respond({ ":status": 200 });
        stream.end(String(sessions.indexOf(session)));
      };
      if (release) answer();
      else held.push(answer);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.83", resolve));
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sessions) s.destroy();
          server.close(() => resolve());
        }),
    );
    const port = (server.address() as AddressInfo).port;
    const connection = createFrameEngineConnection(
      { origin: `http://echo.test:${port}`, address: { host: "127.0.0.83", port }, maxConnections: 4 },
      settings,
    );
    cleanup.push(() => connection.close({ destroy: true }));
    connection.connect();
    await stateOf(connection, "ready");
    // The first call takes the only slot; the second waits on that session
    // while another is dialled; the third goes on the new one.
    const first = call(connection, "1");
    await waitFor("the first stream at the server", () => held.length === 1);
    const second = call(connection, "2");
    await waitFor("a second session at the server", () => sessions.length === 2 && connection.connectionCount() === 2);
    await waitFor("the second session's SETTINGS", () => !sessions[1]!.connecting);
    const third = call(connection, "3");
    await waitFor("a stream on the second session", () => held.length === 2);
    release = true;
    for (const answer of held.splice(0)) answer();
    const answers = await Promise.all([first, second, third]);
    expect(answers.map((a) => a.body.toString())).toEqual(["0", "0", "1"]);
    expect(mostOpen).toBe(1);
  });

  it("speaks TLS with ALPN h2 and checks the certificate against the origin's name", async () => {
    const certs = makeCerts("echo.test");
    const { port } = await startEcho(
      http2.createSecureServer({ key: certs.serverKey, cert: certs.serverCert }),
      "127.0.0.84",
    );
    const connection = createFrameEngineConnection(
      { origin: `https://echo.test:${port}`, address: { host: "127.0.0.84", port }, tls: { ca: certs.ca } },
      settings,
    );
    cleanup.push(() => connection.close({ destroy: true }));
    connection.connect();
    await stateOf(connection, "ready");
    const answer = await call(connection, "over tls");
    expect(answer.body.toString()).toBe("over tls");
  });

  it("fails the connection with a clear error when the TLS server does not agree to h2", async () => {
    const certs = makeCerts("echo.test");
    // A TLS server without ALPN (an HTTP/1.1 server or a TLS terminator of old): the handshake completes, no h2.
    const server = tls.createServer({ key: certs.serverKey, cert: certs.serverCert });
    server.on("secureConnection", (socket) => socket.on("error", () => {}));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.85", resolve));
    cleanup.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as AddressInfo).port;
    const connection = createFrameEngineConnection(
      {
        origin: `https://echo.test:${port}`,
        address: { host: "127.0.0.85", port },
        tls: { ca: certs.ca },
        backoff: { initialMs: 60_000, maxMs: 60_000 },
      },
      settings,
    );
    cleanup.push(() => connection.close({ destroy: true }));
    let failure: Error | undefined;
    connection.subscribe((e) => {
      if (e.type === "state" && e.state === "transient-failure") failure = e.error;
    });
    connection.connect();
    await waitFor("the connection to fail", () => failure);
    expect(String(failure)).toMatch(/did not agree to HTTP\/2 \(ALPN: none\)/);
  });
});
