import http2 from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import { frame } from "../../../test/support/h2-frames.js";
import { connectRawH2, FrameType, frames, type RawH2Client } from "../../../test/support/raw-h2-client.js";
import { waitFor } from "../../../test/support/wait-for.js";
import { type Cleanups, listenLoopback } from "../../transport/test/support/loopback-server.js";
import type { ClientLimitName } from "../src/client-guard.js";
import type { FrameDownstream } from "../src/h2/frame-downstream.js";
import { createServerSession, type ServerSession, type ServerSessionOptions } from "../src/h2/server-session.js";
import { recordingSink } from "./support/recording-sink.js";

const host = "127.0.0.1";
const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const noLimits = {
  maxPrematureResets: 0,
  maxControlFramesPerSecond: 0,
  handshakeTimeoutMs: 0,
  clientIdleTimeoutMs: 0,
  streamIdleTimeoutMs: 0,
};

interface Served {
  port: number;
  sessions: ServerSession[];
  limits: ClientLimitName[];
  streams: FrameDownstream[];
}

/** A TCP server on loopback whose connections are frame-engine sessions calling `onStream`. */
async function serve(
  onStream: (down: FrameDownstream) => void,
  options: Partial<Omit<ServerSessionOptions, "guard">> & { guard?: Partial<ServerSessionOptions["guard"]> } = {},
): Promise<Served> {
  const served: Served = { port: 0, sessions: [], limits: [], streams: [] };
  served.port = await listenLoopback((socket) => {
    served.sessions.push(
      createServerSession(socket, {
        initialWindowSize: 4 * 1024 * 1024,
        maxConcurrentStreams: 100,
        maxHeaderListSize: 65536,
        firstCallWithinMs: 0,
        onClose() {},
        ...options,
        guard: { ...noLimits, ...options.guard },
        onLimit: (limit) => served.limits.push(limit),
        onStream(down) {
          served.streams.push(down);
          onStream(down);
        },
      }),
    );
  }, cleanups);
  return served;
}

function connect(port: number, settings?: http2.Settings): http2.ClientHttp2Session {
  const client = http2.connect(`http://${host}:${port}`, settings ? { settings } : {});
  client.on("error", () => {});
  cleanups.push(() => {
    client.destroy();
  });
  return client;
}

async function raw(port: number, settings?: Array<[number, number]>): Promise<RawH2Client> {
  const c = await connectRawH2(host, port, settings ? { settings } : {});
  cleanups.push(() => c.destroy());
  return c;
}

/** Reads the whole request body of `down`. */
function readBody(down: FrameDownstream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve) => {
    down.body.deliverTo({
      data: (c) => chunks.push(c),
      end: () => resolve(Buffer.concat(chunks)),
    });
    down.body.resume();
  });
}

/** An echo in gRPC's shape: headers, the request body back, trailers. */
function echo(down: FrameDownstream) {
  void readBody(down).then((body) => {
    down.respond(200, { "content-type": "application/grpc", "x-path": down.path }, false, true);
    down.write(body);
    down.end({ "grpc-status": "0", "x-bytes": String(body.length) });
  });
}

interface Answer {
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  trailers: http2.IncomingHttpHeaders | undefined;
  rstCode: number;
}

function request(client: http2.ClientHttp2Session, body: Buffer, path = "/pkg.Service/Method"): Promise<Answer> {
  const stream = client.request({ ":method": "POST", ":path": path, "content-type": "application/grpc" });
  stream.on("error", () => {});
  stream.end(body);
  const chunks: Buffer[] = [];
  let headers: http2.IncomingHttpHeaders = {};
  let trailers: http2.IncomingHttpHeaders | undefined;
  stream.on("response", (h) => {
    headers = h;
  });
  stream.on("trailers", (t) => {
    trailers = t;
  });
  stream.on("data", (c: Buffer) => chunks.push(c));
  return new Promise((resolve) =>
    stream.on("close", () => resolve({ headers, body: Buffer.concat(chunks), trailers, rstCode: stream.rstCode ?? 0 })),
  );
}

describe("h2 server session (frame engine)", () => {
  it("serves concurrent requests of a node:http2 client: headers, body and trailers", async () => {
    const { port, streams } = await serve(echo);
    const client = connect(port);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => request(client, Buffer.alloc(1000 + i, i), `/pkg.Service/M${i}`)),
    );
    answers.forEach((a, i) => {
      expect(a.headers[":status"]).toBe(200);
      expect(a.headers["x-path"]).toBe(`/pkg.Service/M${i}`);
      expect(a.body.equals(Buffer.alloc(1000 + i, i))).toBe(true);
      expect(a.trailers?.["grpc-status"]).toBe("0");
      expect(a.trailers?.["x-bytes"]).toBe(String(1000 + i));
    });
    expect(streams[0]!.method).toBe("POST");
    expect(streams[0]!.headers["content-type"]).toBe("application/grpc");
    expect(streams[0]!.headerPairs).toBeGreaterThanOrEqual(5);
  });

  it("sends a large response within the client's windows, queueing and draining", async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 17);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    let sawBackpressure = false;
    const { port } = await serve((down) => {
      void readBody(down);
      down.respond(200, { "content-type": "application/grpc" }, false, true);
      let offset = 0;
      const pump = () => {
        while (offset < big.length) {
          const chunk = big.subarray(offset, offset + 100_000);
          offset += chunk.length;
          if (!down.write(chunk)) {
            sawBackpressure = true;
            down.onDrain(pump);
            return;
          }
        }
        down.end({ "grpc-status": "0" });
      };
      pump();
    });
    // node:http2's default windows: 64 KiB per stream and connection.
    const a = await request(connect(port), Buffer.from("x"));
    expect(a.body.length).toBe(big.length);
    expect(a.body.equals(big)).toBe(true);
    expect(a.trailers?.["grpc-status"]).toBe("0");
    expect(sawBackpressure).toBe(true);
  });

  it("gives the client credit back only as the body is read; DATA past the window resets the stream", async () => {
    let read: (() => void) | undefined;
    const { port, streams } = await serve(
      (down) => {
        down.body.deliverTo({ data() {}, end() {} });
        read = () => down.body.resume();
      },
      { initialWindowSize: 65535 },
    );
    const c = await raw(port);
    const updatesAtStart = c.received.frames.get(FrameType.windowUpdate) ?? 0;
    c.write(c.requestHeaders(1));
    for (let i = 0; i < 4; i++) c.write(frames.data(1, Buffer.alloc(15000)));
    await waitFor("the stream to be taken up", () => streams.length === 1 && streams[0]!.received === 60000);
    // Unread: no credit back (a stream WINDOW_UPDATE would come once half the window is read).
    // The PING's ACK comes after anything the session sent for the DATA ahead of it.
    const pings = c.received.frames.get(FrameType.ping) ?? 0;
    c.write(frames.ping());
    await waitFor("the PING's ACK", () => (c.received.frames.get(FrameType.ping) ?? 0) > pings);
    expect(c.received.frames.get(FrameType.windowUpdate) ?? 0).toBe(updatesAtStart);
    read!();
    await waitFor("credit once read", () => (c.received.frames.get(FrameType.windowUpdate) ?? 0) > updatesAtStart);
    // Stream 3 overruns its window of 65535 bytes: FLOW_CONTROL_ERROR on that stream only.
    c.write(c.requestHeaders(3));
    for (let i = 0; i < 5; i++) c.write(frames.data(3, Buffer.alloc(15000)));
    await waitFor("stream 3 reset", () => c.received.resets.get(3) === 3);
    expect(c.received.goawayCode).toBeUndefined();
  });

  it("refuses streams past MAX_CONCURRENT_STREAMS with REFUSED_STREAM", async () => {
    const { port } = await serve(() => {}, { maxConcurrentStreams: 2 });
    const c = await raw(port);
    for (const id of [1, 3, 5]) c.write(c.requestHeaders(id));
    await waitFor("stream 5 refused", () => c.received.resets.get(5) === 7);
    expect(c.received.resets.has(1)).toBe(false);
    expect(c.received.resets.has(3)).toBe(false);
  });

  it("resets the client's stream with NO_ERROR after the response's last frame when it still sends (stopRequest)", async () => {
    const { port } = await serve((down) => {
      down.respond(200, { "content-type": "application/grpc" }, false, true);
      down.end({ "grpc-status": "0" });
      down.stopRequest();
    });
    const c = await raw(port);
    c.write(c.requestHeaders(1));
    c.write(frames.data(1, Buffer.alloc(10)));
    await waitFor("reset NO_ERROR", () => c.received.resets.get(1) === 0);
    // Response HEADERS and trailers HEADERS came before the reset.
    expect(c.received.frames.get(FrameType.headers)).toBe(2);
  });

  it("tells the call when the client resets its stream (onAbort)", async () => {
    let aborted = false;
    const { port } = await serve((down) => {
      down.onAbort(() => {
        aborted = true;
      });
      down.respond(200, { "content-type": "application/grpc" }, false, true);
    });
    const c = await raw(port);
    c.write(c.requestHeaders(1));
    await waitFor("answered", () => c.received.answered.has(1));
    c.write(frames.rst(1, 8));
    await waitFor("the call to hear of it", () => aborted);
  });

  it("cuts off rapid reset with ENHANCE_YOUR_CALM; streams reset in the packets that opened them never start", async () => {
    const { port, streams, limits } = await serve(echo, { guard: { maxPrematureResets: 10 } });
    const c = await raw(port);
    const parts: Buffer[] = [];
    for (let i = 0; i < 30; i++) parts.push(c.requestHeaders(1 + 2 * i), frames.rst(1 + 2 * i));
    c.write(Buffer.concat(parts));
    await waitFor("GOAWAY", () => c.received.goawayCode !== undefined);
    expect(c.received.goawayCode).toBe(11);
    expect(limits).toEqual(["rapid_reset"]);
    expect(streams.length).toBe(0);
    expect(await c.waitClosed(5000)).toBe(true);
  });

  it("answers PING, and cuts off a PING flood", async () => {
    const { port, limits } = await serve(echo, { guard: { maxControlFramesPerSecond: 20 } });
    const c = await raw(port);
    c.write(frames.ping());
    await waitFor("PING ACK", () => c.received.frames.get(FrameType.ping) === 1);
    for (let i = 0; i < 30; i++) c.write(frames.ping());
    await waitFor("GOAWAY", () => c.received.goawayCode !== undefined);
    expect(c.received.goawayCode).toBe(11);
    expect(limits).toEqual(["control_flood"]);
  });

  it("cuts off a client that sends PINGs without reading the answers", async () => {
    const { port, limits } = await serve(echo, { guard: { maxControlFramesPerSecond: 1_000_000 } });
    const c = await connectRawH2(host, port, { readSocket: false });
    cleanups.push(() => c.destroy());
    const burst = Buffer.concat(Array.from({ length: 1000 }, () => frames.ping()));
    for (let i = 0; i < 2000 && limits.length === 0; i++) {
      c.write(burst);
      await new Promise((r) => setImmediate(r));
    }
    await waitFor("the cut-off", () => limits.length > 0);
    expect(limits).toEqual(["control_flood"]);
  });

  it("ends a connection whose client never acknowledges our SETTINGS with GOAWAY SETTINGS_TIMEOUT", async () => {
    const { port } = await serve(echo, { settingsTimeoutMs: 200 });
    const silent = await connectRawH2(host, port, { ackSettings: false });
    cleanups.push(() => silent.destroy());
    const acking = await raw(port);
    expect(await silent.waitClosed(5000)).toBe(true);
    expect(silent.received.goawayCode).toBe(0x4);
    // A client that ACKs keeps its connection past the timeout, and its calls are answered.
    acking.write(acking.requestHeaders(1, { endStream: true }));
    await waitFor("the answer", () => acking.received.answered.has(1));
    expect(acking.received.goawayCode).toBeUndefined();
    expect(acking.received.closed).toBe(false);
  });

  it("ends the connection with GOAWAY PROTOCOL_ERROR on DATA for an idle stream", async () => {
    const { port, limits } = await serve(echo);
    const c = await raw(port);
    c.write(frames.data(7, Buffer.alloc(3)));
    await waitFor("GOAWAY", () => c.received.goawayCode !== undefined);
    expect(c.received.goawayCode).toBe(1);
    expect(limits).toEqual(["protocol_error"]);
    expect(await c.waitClosed(5000)).toBe(true);
  });

  it("cuts off a flood of empty DATA frames past node:http2's 1000, and lets a client that sends a few go on", async () => {
    const { port, limits } = await serve(() => {});
    const fine = await raw(port);
    fine.write(fine.requestHeaders(1));
    fine.write(Buffer.concat(Array.from({ length: 900 }, () => frames.data(1, Buffer.alloc(0)))));
    fine.write(frames.ping());
    await waitFor("the PING ACK after 900 empty frames", () => fine.received.frames.get(FrameType.ping) === 1);
    expect(fine.received.goawayCode).toBeUndefined();
    const flood = await raw(port);
    flood.write(flood.requestHeaders(1));
    flood.write(Buffer.concat(Array.from({ length: 1001 }, () => frames.data(1, Buffer.alloc(0)))));
    await waitFor("GOAWAY", () => flood.received.goawayCode !== undefined);
    expect(flood.received.goawayCode).toBe(11);
    expect(limits).toEqual(["invalid_frames"]);
    expect(await flood.waitClosed(5000)).toBe(true);
  });

  it("cuts off a client that keeps opening streams past MAX_CONCURRENT_STREAMS after 100 refusals", async () => {
    const { port, limits } = await serve(() => {}, { maxConcurrentStreams: 1 });
    const c = await raw(port);
    // Stream 1 stays open; streams 3, 5, ... are refused, the 101st refusal ends the connection.
    const parts = [c.requestHeaders(1)];
    for (let i = 1; i <= 101; i++) parts.push(c.requestHeaders(1 + 2 * i));
    c.write(Buffer.concat(parts));
    await waitFor("GOAWAY", () => c.received.goawayCode !== undefined);
    expect(c.received.goawayCode).toBe(11);
    expect(c.received.resets.get(3)).toBe(7);
    expect(limits).toEqual(["invalid_frames"]);
  });

  it("ends a CONTINUATION flood with ENHANCE_YOUR_CALM", async () => {
    const { port, limits } = await serve(echo);
    const c = await raw(port);
    c.write(c.requestHeaders(1, { endHeaders: false }));
    for (let i = 0; i < 40; i++) c.write(frames.continuation(1, Buffer.alloc(0)));
    await waitFor("GOAWAY", () => c.received.goawayCode !== undefined);
    expect(c.received.goawayCode).toBe(11);
    expect(limits).toEqual(["continuation_flood"]);
  });

  it("shuts down gracefully: GOAWAY NO_ERROR, the open call finishes, then the connection closes", async () => {
    let finish: (() => void) | undefined;
    const { port, sessions } = await serve((down) => {
      void readBody(down).then((body) => {
        finish = () => {
          down.respond(200, { "content-type": "application/grpc" }, false, true);
          down.write(body);
          down.end({ "grpc-status": "0" });
        };
      });
    });
    const client = connect(port);
    let goaway: number | undefined;
    client.on("goaway", (code) => {
      goaway = code;
    });
    const answer = request(client, Buffer.from("still served"));
    await waitFor("the call to start", () => finish !== undefined);
    sessions[0]!.shutdown();
    await waitFor("GOAWAY at the client", () => goaway !== undefined);
    expect(goaway).toBe(0);
    finish!();
    const a = await answer;
    expect(a.body.toString()).toBe("still served");
    expect(a.trailers?.["grpc-status"]).toBe("0");
    await waitFor("the connection to close", () => client.closed || client.destroyed);
  });

  it("cancels a stream that moves no bytes for streamIdleTimeoutMs, and closes a connection without calls", async () => {
    let aborted = false;
    const { port, limits } = await serve(
      (down) => {
        down.onAbort(() => {
          aborted = true;
        });
      },
      { guard: { streamIdleTimeoutMs: 200, clientIdleTimeoutMs: 300 } },
    );
    const c = await raw(port);
    c.write(c.requestHeaders(1));
    await waitFor("stream 1 cancelled", () => c.received.resets.get(1) === 8);
    await waitFor("the call to hear of it", () => aborted);
    await waitFor("GOAWAY after the idle time", () => c.received.goawayCode !== undefined);
    expect(c.received.goawayCode).toBe(0);
    expect(limits).toEqual(["stream_idle", "idle_timeout"]);
  });

  it("closes a connection that starts no call within the handshake time", async () => {
    const { port, limits } = await serve(echo, { firstCallWithinMs: 150 });
    const c = await raw(port);
    expect(await c.waitClosed(5000)).toBe(true);
    expect(limits).toEqual(["handshake_timeout"]);
  });

  it("resets malformed requests with PROTOCOL_ERROR and keeps the connection", async () => {
    const { port, streams } = await serve(echo);
    const c = await raw(port);
    c.write(c.requestHeaders(1, { extra: [["connection", "keep-alive"]] }));
    c.write(c.requestHeaders(3, { extra: [["Upper", "x"]] }));
    await waitFor("both reset", () => c.received.resets.get(1) === 1 && c.received.resets.get(3) === 1);
    expect(c.received.goawayCode).toBeUndefined();
    expect(streams.length).toBe(0);
  });
});

const bytesOf = (chunks: Buffer[]) => chunks.reduce((n, c) => n + c.length, 0);

/** Resolves once the session answered a PING sent now: what it sent for the frames before it has come. */
async function barrier(c: RawH2Client) {
  const pings = c.received.frames.get(FrameType.ping) ?? 0;
  c.write(frames.ping());
  await waitFor("the PING's ACK", () => (c.received.frames.get(FrameType.ping) ?? 0) > pings);
}

/** A DATA frame with PADDED: a pad-length byte, `data`, then `padding` zero bytes, all flow-controlled. */
function paddedData(streamId: number, data: Buffer, padding: number): Buffer {
  return frame(FrameType.data, 0x8, streamId, Buffer.concat([Buffer.from([padding]), data, Buffer.alloc(padding)]));
}

// Windows of 65535 for the stream and the connection: credit comes back in
// a WINDOW_UPDATE once half of either (32768) was handed on.
const smallWindows = { initialWindowSize: 65535, connectionWindowSize: 65535 };

describe("h2 server session: the request body (no Readable)", () => {
  it("credits the client only for bytes handed to the sink: none before deliverTo or while paused", async () => {
    const { port, streams } = await serve(() => {}, smallWindows);
    const c = await raw(port);
    c.write(c.requestHeaders(1));
    for (let i = 0; i < 4; i++) c.write(frames.data(1, Buffer.alloc(15000, i)));
    await waitFor("the stream taken up with its DATA", () => streams.length === 1 && streams[0]!.received === 60000);
    const down = streams[0]!;
    await barrier(c);
    expect(c.received.credit.get(1)).toBeUndefined();
    expect(c.received.credit.get(0)).toBeUndefined();

    const { got, sink, call } = recordingSink();
    call(() => down.body.deliverTo(sink));
    await barrier(c);
    expect(got.chunks.length).toBe(0);
    expect(c.received.credit.get(1)).toBeUndefined();

    call(() => down.body.resume());
    expect(got.chunks.length).toBe(0);
    // Credit goes back as the sink takes the bytes: a WINDOW_UPDATE once half a window is owed.
    await waitFor(
      "credit once delivered",
      () => (c.received.credit.get(1) ?? 0) >= 32768 && (c.received.credit.get(0) ?? 0) >= 32768,
    );
    expect(c.received.credit.get(1)).toBeLessThanOrEqual(60000);
    expect(got.chunks.map((b) => b[0])).toEqual([0, 1, 2, 3]);
    expect(bytesOf(got.chunks)).toBe(60000);
    // Flowing now: DATA goes to the sink as it comes, and the end after it.
    c.write(frames.data(1, Buffer.from("tail")));
    c.write(frames.data(1, Buffer.alloc(0), true));
    await waitFor("the end", () => got.ended);
    expect(got.chunks.at(-1)!.toString()).toBe("tail");
    expect(got.reentered).toBe(false);
  });

  it("keeps DATA and the end while paused, and hands them on in order after resume, on a later tick", async () => {
    let down: FrameDownstream | undefined;
    const { got, sink, call } = recordingSink();
    const { port } = await serve((d) => {
      down = d;
      call(() => d.body.deliverTo(sink));
      call(() => d.body.resume());
    }, smallWindows);
    // The first chunk pauses the body: what follows waits, uncredited.
    const data = sink.data.bind(sink);
    sink.data = (chunk) => {
      data(chunk);
      if (got.chunks.length === 1) down!.body.pause();
    };
    const c = await raw(port);
    c.write(c.requestHeaders(1));
    await waitFor("the call", () => down !== undefined);
    c.write(frames.data(1, Buffer.alloc(15000, 1)));
    c.write(frames.data(1, Buffer.alloc(15000, 2)));
    c.write(frames.data(1, Buffer.alloc(15000, 3), true));
    await waitFor("the first chunk", () => got.chunks.length === 1);
    await barrier(c);
    expect(got.chunks.length).toBe(1);
    expect(got.ended).toBe(false);
    // 15000 handed on: under half the connection window, so no WINDOW_UPDATE yet.
    expect(c.received.credit.get(0)).toBeUndefined();

    call(() => down!.body.resume());
    expect(got.chunks.length).toBe(1);
    await waitFor("the end", () => got.ended);
    expect(got.chunks.map((b) => b[0])).toEqual([1, 2, 3]);
    // After END_STREAM the stream gets no WINDOW_UPDATE, the connection all 45000.
    await waitFor("connection credit", () => c.received.credit.get(0) === 45000);
    expect(c.received.credit.get(1)).toBeUndefined();
    expect(got.reentered).toBe(false);
  });

  it("discard() credits what waits and all that comes later; the sink hears nothing more", async () => {
    const { port, streams } = await serve(() => {}, smallWindows);
    const c = await raw(port);
    c.write(c.requestHeaders(1));
    for (let i = 0; i < 4; i++) c.write(frames.data(1, Buffer.alloc(15000)));
    await waitFor("the DATA", () => streams.length === 1 && streams[0]!.received === 60000);
    const down = streams[0]!;
    const { got, sink } = recordingSink();
    down.body.deliverTo(sink);
    await barrier(c);
    expect(c.received.credit.get(1)).toBeUndefined();
    down.body.discard();
    await waitFor("credit for what waited", () => c.received.credit.get(1) === 60000);
    // Another 60000: past the window, had the discarded bytes not been credited.
    for (let i = 0; i < 4; i++) c.write(frames.data(1, Buffer.alloc(15000)));
    await waitFor("credit for what came later", () => (c.received.credit.get(1) ?? 0) >= 60000 + 32768);
    c.write(frames.data(1, Buffer.alloc(0), true));
    down.body.resume();
    await barrier(c);
    await new Promise((r) => setImmediate(r));
    expect(got.chunks.length).toBe(0);
    expect(got.ended).toBe(false);
    expect(c.received.credit.get(0)).toBeGreaterThanOrEqual(60000 + 32768);
    expect(c.received.resets.has(1)).toBe(false);
    expect(c.received.goawayCode).toBeUndefined();
  });

  it("credits padding at once, the payload only when delivered", async () => {
    const { port, streams } = await serve(() => {}, smallWindows);
    const c = await raw(port);
    c.write(c.requestHeaders(1));
    c.write(paddedData(1, Buffer.alloc(100, 7), 200));
    c.write(paddedData(1, Buffer.alloc(100, 8), 255));
    for (let i = 0; i < 130; i++) c.write(paddedData(1, Buffer.alloc(0), 255));
    await waitFor("the DATA", () => streams.length === 1 && streams[0]!.received === 2 * 101 + 200 + 255 + 130 * 256);
    await barrier(c);
    // 200 + 255 + 130 * 255 bytes of padding and 132 pad-length bytes, over half the window; the payload is 200.
    expect(c.received.credit.get(1)).toBeGreaterThanOrEqual(32768);
    const { got, sink } = recordingSink();
    streams[0]!.body.deliverTo(sink);
    streams[0]!.body.resume();
    await waitFor("the payload", () => got.chunks.length === 2);
    expect(got.chunks[0]!.equals(Buffer.alloc(100, 7))).toBe(true);
  });

  it("a client reset stops the body: what waited is dropped, nothing is delivered after", async () => {
    let aborted = false;
    const { port, streams } = await serve((down) => {
      down.onAbort(() => {
        aborted = true;
      });
    });
    const c = await raw(port);
    c.write(c.requestHeaders(1));
    c.write(frames.data(1, Buffer.from("never delivered")));
    await waitFor("the DATA", () => streams.length === 1 && streams[0]!.received > 0);
    const { got, sink } = recordingSink();
    streams[0]!.body.deliverTo(sink);
    c.write(frames.rst(1, 8));
    await waitFor("the abort", () => aborted);
    streams[0]!.body.resume();
    await new Promise((r) => setImmediate(r));
    expect(got.chunks.length).toBe(0);
    expect(got.ended).toBe(false);
  });
});
