import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { isCallNotSent } from "@meshlite/transport/connection";
import { afterEach, describe, expect, it } from "vitest";
import { makeCerts } from "../../../test/support/certs.js";
import { waitFor } from "../../../test/support/wait-for.js";
import { type ClientSession, createClientSession } from "../src/h2/client-session.js";
import {
  collect,
  openSession,
  patterned,
  pingRoundTrip,
  ready,
  responseOrder,
  squash,
  startNodeServer,
} from "./support/client-session-peers.js";
import type { Cleanups } from "./support/loopback-server.js";

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;
const grpcRequest = { ":method": "POST", ":path": "/pkg.Service/Method", "content-type": "application/grpc" };

/** Reads a server stream's whole request body. */
function readAll(stream: http2.ServerHttp2Stream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on("data", (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => stream.on("end", () => resolve(Buffer.concat(chunks))));
}

/** An echo in gRPC's shape: the request body back between headers and trailers. */
function echo(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) {
  void readAll(stream).then((body) => {
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", "x-path": headers[":path"] },
      {
        waitForTrailers: true,
      },
    );
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "x-bytes": String(body.length) }));
    stream.end(body);
  });
}

/** Writes `data` in `chunkSize` pieces as the stream's backpressure allows, then ends it; `onWritten(offset)` after each. */
function writeAll(
  stream: http2.ServerHttp2Stream,
  data: Buffer,
  chunkSize: number,
  onWritten: (offset: number) => void = () => {},
) {
  let offset = 0;
  const pump = () => {
    while (offset < data.length) {
      const chunk = data.subarray(offset, offset + chunkSize);
      offset += chunk.length;
      onWritten(offset);
      if (!stream.write(chunk)) {
        stream.once("drain", pump);
        return;
      }
    }
    stream.end();
  };
  pump();
}

function sha(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

async function unaryEcho(session: ClientSession) {
  const stream = session.request({ ...grpcRequest, "x-custom": ["a", "b"] });
  const c = collect(stream);
  stream.end(Buffer.from("hello"));
  const outcome = await c.closed;
  expect(outcome).toEqual({ rstCode: 0, notSent: false, connectionLost: false });
  expect(c.violations).toEqual([]);
  expect(squash(c.order)).toEqual(responseOrder(1, true));
  expect(c.headers?.[":status"]).toBe(200);
  expect(Object.getPrototypeOf(c.headers)).toBe(null);
  expect(c.headers?.["x-path"]).toBe("/pkg.Service/Method");
  expect(c.endStream).toBe(false);
  expect(c.body().toString()).toBe("hello");
  expect(c.trailers).toMatchObject({ "grpc-status": "0", "x-bytes": "5" });
  expect(stream.destroyed).toBe(true);
}

describe("h2 client session against node:http2", () => {
  it("sends a unary request and reads headers, body and trailers (h2c)", async () => {
    let seen: http2.IncomingHttpHeaders | undefined;
    const { port } = await startNodeServer(cleanups, (stream, headers) => {
      seen = headers;
      echo(stream, headers);
    });
    const { session, errors } = await openSession(cleanups, port);
    expect(session.connecting).toBe(true);
    await ready(session);
    expect(session.connecting).toBe(false);
    await unaryEcho(session);
    expect(seen?.[":scheme"]).toBe("http");
    expect(seen?.[":authority"]).toBe(`127.0.0.1:${port}`);
    expect(seen?.["x-custom"]).toBe("a, b");
    expect(errors).toEqual([]);
  });

  it("sends a unary request over TLS with a self-signed certificate", async () => {
    const certs = makeCerts({ serverAltNames: ["IP:127.0.0.1"], selfSignedServer: true });
    let scheme: string | undefined;
    const { port } = await startNodeServer(
      cleanups,
      (stream, headers) => {
        scheme = headers[":scheme"];
        echo(stream, headers);
      },
      { tls: { key: certs.serverKey, cert: certs.serverCert } },
    );
    const { session } = await openSession(cleanups, port, { ca: certs.serverCert });
    await unaryEcho(session);
    expect(scheme).toBe("https");
  });

  it("ends a GET's request with its HEADERS, and reads a trailers-only response", async () => {
    let requestBytes = -1;
    const { port } = await startNodeServer(cleanups, (stream) => {
      void readAll(stream).then((b) => {
        requestBytes = b.length;
        stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "5" }, { endStream: true });
      });
    });
    const { session } = await openSession(cleanups, port);
    const stream = session.request({ ":method": "GET", ":path": "/thing" });
    const c = collect(stream);
    // No end(): the GET ended at once; the server read its (empty) body to the end.
    expect(await c.closed).toEqual({ rstCode: 0, notSent: false, connectionLost: false });
    expect(requestBytes).toBe(0);
    expect(c.order).toEqual(["response", "close"]);
    expect(c.endStream).toBe(true);
    expect(c.headers?.["grpc-status"]).toBe("5");
    expect(stream.write(Buffer.from("late"))).toBe(true);
  });

  it("writes a unary request's HEADERS, DATA and END_STREAM in one socket write", async () => {
    const { port } = await startNodeServer(cleanups, echo);
    const socket = net.connect({ host: "127.0.0.1", port });
    await once(socket, "connect");
    const writes: Buffer[] = [];
    const write = socket.write.bind(socket) as (chunk: Buffer) => boolean;
    socket.write = ((chunk: Buffer) => {
      writes.push(Buffer.from(chunk));
      return write(chunk);
    }) as typeof socket.write;
    const session = createClientSession(socket, { authority: `127.0.0.1:${port}` });
    cleanups.push(() => session.destroy());
    await ready(session);
    const before = writes.length;
    const stream = session.request(grpcRequest);
    const c = collect(stream);
    stream.end(Buffer.from("one write"));
    await c.closed;
    const frames = writes.slice(before).map(framesOf);
    const carrying = frames.filter((f) => f.some((x) => x.streamId === 1));
    expect(carrying).toHaveLength(1);
    expect(carrying[0]!.filter((x) => x.streamId === 1)).toEqual([
      { type: 1, flags: 4, streamId: 1 }, // HEADERS, END_HEADERS
      { type: 0, flags: 1, streamId: 1 }, // DATA, END_STREAM
    ]);
  });

  it("moves several MiB each way within the windows, slow readers on either side", async () => {
    const upload = patterned(6 * 1024 * 1024 + 11, 7);
    const download = patterned(5 * 1024 * 1024 + 3, 9);
    let serverGot = 0;
    let serverStream: http2.ServerHttp2Stream | undefined;
    let serverSent = 0;
    const { port } = await startNodeServer(cleanups, (stream) => {
      serverStream = stream;
      stream.pause(); // a slow reader: nothing read until the test says so
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => {
        serverGot += c.length;
        chunks.push(c);
      });
      stream.on("end", () => {
        const body = Buffer.concat(chunks);
        stream.respond({ ":status": 200, "x-sha": sha(body) }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        writeAll(stream, download, 65536, (offset) => {
          serverSent = offset;
        });
      });
    });
    const window = 256 * 1024;
    const { session } = await openSession(cleanups, port, { initialWindowSize: window });
    await ready(session);
    const stream = session.request(grpcRequest);
    let received = 0;
    let pausedAt = -1;
    const c = collect(stream, {
      data(chunk) {
        received += chunk.length;
        // A slow reader on our side: stop once 1 MiB came.
        if (pausedAt < 0 && received >= 1024 * 1024) {
          pausedAt = received;
          stream.pause();
        }
      },
    });
    // Upload, as a well-behaved writer: wait for onDrain when write() says so.
    let written = 0;
    let sawBackpressure = false;
    const uploaded = new Promise<void>((resolve) => {
      const pump = () => {
        while (written < upload.length) {
          const chunk = upload.subarray(written, written + 100_000);
          written += chunk.length;
          if (!stream.write(chunk)) {
            sawBackpressure = true;
            stream.onDrain(pump);
            return;
          }
        }
        stream.end();
        resolve();
      };
      pump();
    });
    // The server reads nothing yet: what left the stream's queue is within
    // node:http2's stream window (65535), the rest waits in the queue.
    await waitFor("the upload to block", () => sawBackpressure);
    await pingRoundTrip(session);
    await pingRoundTrip(session);
    expect(written - stream.queuedBytes).toBeLessThanOrEqual(65535);
    expect(written).toBeLessThanOrEqual(200_000);
    expect(serverGot).toBe(0);
    serverStream!.resume();
    await uploaded;
    expect(sawBackpressure).toBe(true);
    // Our side paused at 1 MiB: the server can be at most our window (plus its own buffers) ahead.
    await waitFor("our reader to pause", () => pausedAt > 0);
    await pingRoundTrip(session);
    await pingRoundTrip(session);
    const ahead = serverSent - received;
    expect(ahead).toBeLessThanOrEqual(window + 512 * 1024);
    expect(received).toBe(pausedAt);
    stream.resume();
    const outcome = await c.closed;
    expect(outcome.rstCode).toBe(0);
    expect(c.violations).toEqual([]);
    expect(c.headers?.["x-sha"]).toBe(sha(upload));
    expect(c.body().length).toBe(download.length);
    expect(sha(c.body())).toBe(sha(download));
    expect(c.trailers?.["grpc-status"]).toBe("0");
  });

  it("a stream whose consumer stalls holds back only itself, not the connection's other streams", async () => {
    const download = patterned(1024 * 1024 + 5, 3);
    const { port } = await startNodeServer(cleanups, (stream) => {
      stream.respond({ ":status": 200 });
      writeAll(stream, download, 32768);
    });
    // Two stalled streams' windows (2 x 256 KiB) fill the connection window (512 KiB) if its
    // credit waited for consumers.
    const window = 256 * 1024;
    const { session } = await openSession(cleanups, port, {
      initialWindowSize: window,
      connectionWindowSize: 2 * window,
    });
    await ready(session);
    const stalled = ["a", "b"].map((name) => {
      const stream = session.request({ ...grpcRequest, ":method": "GET", "x-name": name });
      stream.pause();
      return { stream, c: collect(stream) };
    });
    // Received by the session, held for their paused consumers.
    await waitFor("the stalled streams' windows to fill", () =>
      stalled.every(({ stream }) => stream.unreleased >= window),
    );
    const moving = session.request({ ...grpcRequest, ":method": "GET", "x-name": "c" });
    const c = collect(moving);
    expect((await c.closed).rstCode).toBe(0);
    expect(sha(c.body())).toBe(sha(download));
    // The stalled ones got no further than their own window, and their consumers nothing yet.
    for (const { stream, c: stalledC } of stalled) {
      expect(stalledC.chunks.length).toBe(0);
      expect(stream.unreleased).toBeLessThanOrEqual(window);
    }
    for (const { stream, c: stalledC } of stalled) {
      stream.resume();
      expect((await stalledC.closed).rstCode).toBe(0);
      expect(sha(stalledC.body())).toBe(sha(download));
    }
  });

  it("runs many concurrent streams on one connection", async () => {
    const { port, sessions } = await startNodeServer(cleanups, echo);
    const { session } = await openSession(cleanups, port);
    const calls = Array.from({ length: 200 }, (_, i) => {
      const stream = session.request({ ...grpcRequest, ":path": `/pkg.Service/M${i}` });
      const c = collect(stream);
      stream.end(patterned(100 + i * 37, i + 1));
      return c;
    });
    const outcomes = await Promise.all(calls.map((c) => c.closed));
    outcomes.forEach((o, i) => {
      expect(o.rstCode).toBe(0);
      const c = calls[i]!;
      expect(c.headers?.["x-path"]).toBe(`/pkg.Service/M${i}`);
      expect(c.body().equals(patterned(100 + i * 37, i + 1))).toBe(true);
      expect(c.violations).toEqual([]);
    });
    expect(sessions.length).toBe(1);
    expect(session.openStreams).toBe(0);
  });

  it("keeps streams past the server's MAX_CONCURRENT_STREAMS waiting until a slot frees", async () => {
    let open = 0;
    let maxOpen = 0;
    const { port } = await startNodeServer(
      cleanups,
      (stream, headers) => {
        open++;
        maxOpen = Math.max(maxOpen, open);
        stream.on("close", () => open--);
        // Held a little, so the others must wait for these two.
        setTimeout(() => echo(stream, headers), 20);
      },
      { settings: { maxConcurrentStreams: 2 } },
    );
    const { session } = await openSession(cleanups, port);
    const settings: http2.Settings[] = [];
    session.on("remoteSettings", (s) => settings.push(s));
    await ready(session);
    expect(settings[0]?.maxConcurrentStreams).toBe(2);
    const calls = Array.from({ length: 10 }, (_, i) => {
      const stream = session.request(grpcRequest);
      const c = collect(stream);
      stream.end(Buffer.from(`call ${i}`));
      return c;
    });
    expect(session.openStreams).toBe(10);
    const outcomes = await Promise.all(calls.map((c) => c.closed));
    for (const [i, o] of outcomes.entries()) {
      expect(o).toEqual({ rstCode: 0, notSent: false, connectionLost: false });
      expect(calls[i]!.body().toString()).toBe(`call ${i}`);
    }
    expect(maxOpen).toBe(2);
  });

  it("reports REFUSED_STREAM as not sent", async () => {
    const { port } = await startNodeServer(cleanups, (stream) => stream.close(NGHTTP2_REFUSED_STREAM));
    const { session } = await openSession(cleanups, port);
    const stream = session.request(grpcRequest);
    const c = collect(stream);
    stream.end(Buffer.from("x"));
    const outcome = await c.closed;
    expect(outcome.notSent).toBe(true);
    expect(outcome.rstCode).toBe(NGHTTP2_REFUSED_STREAM);
    expect(outcome.connectionLost).toBe(false);
    expect(isCallNotSent(outcome.error)).toBe(true);
    expect(c.order).toEqual(["close"]);
  });

  it("finishes the streams under a graceful GOAWAY, reports the ones above it as not sent", async () => {
    const held: Array<() => void> = [];
    const { port, sessions } = await startNodeServer(cleanups, (stream, headers) => {
      held.push(() => echo(stream, headers));
    });
    const { session } = await openSession(cleanups, port);
    await ready(session);
    const calls = [1, 3, 5].map((id) => {
      const stream = session.request(grpcRequest);
      const c = collect(stream);
      stream.end(Buffer.from(`stream ${id}`));
      return c;
    });
    await waitFor("the server to hold three streams", () => held.length === 3);
    const goaway = once(session, "goaway");
    sessions[0]!.goaway(NGHTTP2_NO_ERROR, 3);
    expect(await goaway).toEqual([NGHTTP2_NO_ERROR, 3]);
    expect(session.closed).toBe(true);
    expect(() => session.request(grpcRequest)).toThrow(/closed/);
    try {
      session.request(grpcRequest);
    } catch (e) {
      expect(isCallNotSent(e)).toBe(true);
    }
    const above = await calls[2]!.closed;
    expect(above.notSent).toBe(true);
    for (const answer of held) answer();
    for (const c of calls.slice(0, 2)) {
      expect((await c.closed).rstCode).toBe(0);
      expect(c.trailers?.["grpc-status"]).toBe("0");
    }
    expect(calls[0]!.body().toString()).toBe("stream 1");
    // With nothing open the session ends its socket.
    await once(session, "close");
    expect(session.destroyed).toBe(true);
  });

  it("reports the connection lost when the server's socket dies mid-stream", async () => {
    const server = await startNodeServer(cleanups, (stream) => {
      stream.respond({ ":status": 200 });
      stream.write(Buffer.alloc(1000), () => server.destroySockets());
    });
    const port = server.port;
    const { session } = await openSession(cleanups, port);
    const seen: string[] = [];
    const stream = session.request(grpcRequest, (lost) => seen.push(`onClosed(${lost})`));
    const c = collect(stream, { close: () => seen.push("close") });
    stream.write(Buffer.from("body"));
    const closed = once(session, "close");
    const outcome = await c.closed;
    expect(outcome.connectionLost).toBe(true);
    expect(outcome.notSent).toBe(false);
    expect(outcome.error?.message).toMatch(/connection lost/);
    // onClosed ran just before the close event.
    expect(seen).toEqual(["onClosed(true)", "close"]);
    expect(c.order[0]).toBe("response");
    await closed;
    expect(session.destroyed).toBe(true);
    expect(() => session.request(grpcRequest)).toThrow();
  });

  it("cancel() resets the stream at the server", async () => {
    let serverCode: number | undefined;
    const { port } = await startNodeServer(cleanups, (stream, headers) => {
      if (headers[":path"] !== grpcRequest[":path"]) return echo(stream, headers);
      stream.respond({ ":status": 200 });
      stream.write(Buffer.from("partial"));
      stream.on("close", () => {
        serverCode = stream.rstCode;
      });
    });
    const { session } = await openSession(cleanups, port);
    const stream = session.request(grpcRequest);
    // From inside data(): the contract says that is safe.
    const c = collect(stream, { data: () => stream.cancel() });
    stream.write(Buffer.from("x"));
    const outcome = await c.closed;
    expect(outcome).toEqual({ rstCode: NGHTTP2_CANCEL, notSent: false, connectionLost: false });
    expect(c.order).toEqual(["response", "data", "close"]);
    await waitFor("the server to see the reset", () => serverCode !== undefined);
    expect(serverCode).toBe(NGHTTP2_CANCEL);
    // The connection goes on.
    const again = session.request({ ...grpcRequest, ":path": "/again" });
    const c2 = collect(again);
    again.end(Buffer.from("again"));
    expect((await c2.closed).rstCode).toBe(0);
    expect(c2.body().toString()).toBe("again");
  });

  it("cancel(NO_ERROR) of a complete response while the request is still open closes with rstCode 0", async () => {
    let serverCode: number | undefined;
    const { port } = await startNodeServer(cleanups, (stream) => {
      stream.on("close", () => {
        serverCode = stream.rstCode;
      });
      stream.respond({ ":status": 200, "grpc-status": "0" }, { endStream: true });
    });
    const { session } = await openSession(cleanups, port);
    const stream = session.request(grpcRequest);
    const c = collect(stream, { response: () => stream.cancel(NGHTTP2_NO_ERROR) });
    stream.write(Buffer.from("never ends"));
    expect(await c.closed).toEqual({ rstCode: 0, notSent: false, connectionLost: false });
    expect(c.order).toEqual(["response", "close"]);
    await waitFor("the server stream to close", () => serverCode !== undefined);
    expect(serverCode).toBe(NGHTTP2_NO_ERROR);
  });

  it("pause() holds DATA, trailers and end until resume(); then they come in order", async () => {
    const { port } = await startNodeServer(cleanups, (stream) => {
      stream.respond({ ":status": 200 }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.write(Buffer.from("one "));
      stream.write(Buffer.from("two "));
      stream.end(Buffer.from("three"));
    });
    const { session } = await openSession(cleanups, port);
    const stream = session.request({ ":method": "GET", ":path": "/" });
    const c = collect(stream, { response: () => stream.pause() });
    await waitFor("the response", () => c.headers !== undefined);
    // Everything the server sent has arrived by the PING's ACK; none of it was handed over.
    await pingRoundTrip(session);
    await pingRoundTrip(session);
    expect(c.order).toEqual(["response"]);
    expect(stream.destroyed).toBe(true); // over on the wire: both sides ended
    stream.resume();
    await c.closed;
    expect(squash(c.order)).toEqual(responseOrder(1, true));
    expect(c.body().toString()).toBe("one two three");
    expect(c.violations).toEqual([]);
  });

  it("a cancelled stream still waiting for a slot closes as not sent; the server never sees it", async () => {
    const paths: string[] = [];
    const held: Array<() => void> = [];
    const { port } = await startNodeServer(
      cleanups,
      (stream, headers) => {
        paths.push(headers[":path"]!);
        held.push(() => echo(stream, headers));
      },
      { settings: { maxConcurrentStreams: 1 } },
    );
    const { session } = await openSession(cleanups, port);
    await ready(session);
    const first = session.request({ ...grpcRequest, ":path": "/first" });
    const c1 = collect(first);
    first.end(Buffer.from("1"));
    const waiting = session.request({ ...grpcRequest, ":path": "/waiting" });
    const c2 = collect(waiting);
    expect(waiting.write(Buffer.from("queued"))).toBe(false);
    const third = session.request({ ...grpcRequest, ":path": "/third" });
    const c3 = collect(third);
    third.end(Buffer.from("3"));
    await waitFor("the server to hold the first", () => held.length === 1);
    waiting.cancel();
    expect(await c2.closed).toEqual({ rstCode: NGHTTP2_CANCEL, notSent: true, connectionLost: false });
    held[0]!();
    expect((await c1.closed).rstCode).toBe(0);
    // The slot goes to the third, not to the cancelled one.
    await waitFor("the server to hold the third", () => held.length === 2);
    held[1]!();
    expect((await c3.closed).rstCode).toBe(0);
    expect(c3.body().toString()).toBe("3");
    expect(paths).toEqual(["/first", "/third"]);
  });

  it("the session's close waits for a paused consumer to take a response that ended on the wire", async () => {
    const { port } = await startNodeServer(cleanups, (stream) => {
      stream.respond({ ":status": 200 }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(Buffer.from("kept for the consumer"));
    });
    const { session } = await openSession(cleanups, port);
    const order: string[] = [];
    const stream = session.request({ ":method": "GET", ":path": "/" });
    const c = collect(stream, { response: () => stream.pause(), close: () => order.push("stream close") });
    await waitFor("the response", () => c.headers !== undefined);
    await pingRoundTrip(session);
    session.on("close", () => order.push("session close"));
    session.close();
    // The socket ends (nothing is open on the wire), but the stream has not closed for its consumer.
    // (Its close would have come a tick after the socket's; waitFor polls later than that.)
    await waitFor("the socket to close", () => session.destroyed);
    expect(order).toEqual([]);
    stream.resume();
    await waitFor("both closes", () => order.length === 2);
    expect(order).toEqual(["stream close", "session close"]);
    expect(squash(c.order)).toEqual(responseOrder(1, true));
    expect(c.body().toString()).toBe("kept for the consumer");
  });

  it("pings, and fails an unanswered ping when destroyed", async () => {
    const { port } = await startNodeServer(cleanups, echo);
    const { session } = await openSession(cleanups, port);
    const ms = await pingRoundTrip(session);
    expect(ms).toBeGreaterThanOrEqual(0);
    let failed: Error | null = null;
    expect(session.ping((err) => (failed = err))).toBe(true);
    session.destroy();
    expect(session.ping(() => {})).toBe(false);
    await once(session, "close");
    expect(failed).toBeInstanceOf(Error);
  });

  it("close() lets open streams finish, then ends the socket; destroy() closes them as lost", async () => {
    const held: Array<() => void> = [];
    const server = await startNodeServer(cleanups, (stream, headers) => held.push(() => echo(stream, headers)));
    const { session } = await openSession(cleanups, server.port);
    const events: string[] = [];
    const stream = session.request(grpcRequest);
    const c = collect(stream, { close: () => events.push("stream close") });
    stream.end(Buffer.from("finish me"));
    await waitFor("the server to hold the stream", () => held.length === 1);
    session.on("close", () => events.push("session close"));
    const goaway = new Promise<number>((resolve) => server.sessions[0]!.once("goaway", (code) => resolve(code)));
    session.close();
    expect(await goaway).toBe(NGHTTP2_NO_ERROR);
    expect(session.closed).toBe(true);
    expect(session.destroyed).toBe(false);
    expect(() => session.request(grpcRequest)).toThrow();
    held[0]!();
    await once(session, "close");
    expect(events).toEqual(["stream close", "session close"]);
    expect(c.body().toString()).toBe("finish me");
    await waitFor("the server to see the socket closed", () => server.closedSockets() === 1);

    const second = await openSession(cleanups, server.port);
    const order: string[] = [];
    const s2 = second.session.request(grpcRequest);
    const c2 = collect(s2, { close: () => order.push("stream close") });
    s2.write(Buffer.from("x"));
    await waitFor("the server to hold the stream", () => held.length === 2);
    second.session.on("error", () => order.push("error"));
    second.session.on("close", () => order.push("close"));
    second.session.destroy(new Error("going"));
    expect(second.session.destroyed).toBe(true);
    const outcome = await c2.closed;
    expect(outcome.connectionLost).toBe(true);
    await waitFor("the session's close", () => order.includes("close"));
    expect(order).toEqual(["stream close", "error", "close"]);
    expect(second.errors.map((e) => e.message)).toEqual(["going"]);
    await waitFor("the server to see the socket closed", () => server.closedSockets() === 2);
  });
});

describe("h2 client session leaves nothing behind", () => {
  for (const mode of ["close", "destroy", "unref"] as const) {
    it(`${mode}(): the process exits by itself`, async () => {
      const server = await startNodeServer(cleanups, (stream, headers) => {
        if (headers[":path"] === "/echo") echo(stream, headers);
      });
      const script = fileURLToPath(new URL("./fixtures/client-session-exit.ts", import.meta.url));
      const tsconfig = fileURLToPath(new URL("../../../tsconfig.json", import.meta.url));
      const started = Date.now();
      const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((resolve) => {
        const child = execFile(
          process.execPath,
          ["--import", "tsx", script, String(server.port), mode],
          { env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig }, timeout: 30_000 },
          (error, stdout) => resolve({ stdout, code: error ? ((error as { code?: number }).code ?? -1) : 0 }),
        );
        child.stdin?.end();
      });
      expect(code).toBe(0);
      if (mode === "unref") expect(stdout).toContain(JSON.stringify({ answer: "hello", destroyed: false }));
      else {
        const last = mode === "close" ? "last" : "lost";
        expect(stdout).toContain(JSON.stringify({ answer: "hello", last, destroyed: true }));
      }
      expect(stdout).toContain("exit 0");
      expect(Date.now() - started).toBeLessThan(25_000);
      await waitFor("the server to see the socket closed", () => server.closedSockets() === 1);
    });
  }
});

/** The frame headers in one write of ours (after the preface, if it starts with it). */
function framesOf(b: Buffer): Array<{ type: number; flags: number; streamId: number }> {
  const out = [];
  let i = b.subarray(0, 3).toString() === "PRI" ? 24 : 0;
  while (i + 9 <= b.length) {
    const length = b.readUIntBE(i, 3);
    out.push({ type: b[i + 3]!, flags: b[i + 4]!, streamId: b.readUInt32BE(i + 5) & 0x7fffffff });
    i += 9 + length;
  }
  return out;
}
