import * as http2 from "node:http2";
import * as net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoRequestSchema, EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { startLoad } from "./support/load.js";
import { connectRawH2, envelope, FrameType, frames, headerBlock, type RawH2Client } from "./support/raw-h2-client.js";
import { waitFor } from "./support/wait-for.js";

// The proxy against clients that misbehave on purpose (issue 17): each attack
// is driven with raw HTTP/2 frames while a well-behaved client keeps calling
// through the same proxy; its calls must all succeed, the attack must be cut
// off or bounded, and it must show on /metrics.

const host = "127.0.60.10";
const limits = {
  maxPrematureResets: 100,
  maxControlFramesPerSecond: 100,
  handshakeTimeoutMs: 1000,
  clientIdleTimeoutMs: 3000,
  streamIdleTimeoutMs: 1500,
  maxHeaderBytes: 16_384,
  maxHeaderPairs: 128,
  maxMessageBytes: 1024 * 1024,
};
const ENHANCE_YOUR_CALM = http2.constants.NGHTTP2_ENHANCE_YOUR_CALM;

let backends: EchoBackend[];
let proxy: MeshliteProxy;
let port: number;

beforeAll(async () => {
  backends = await Promise.all([1, 2].map((n) => startEchoBackend({ host: `127.0.60.${n}` })));
  proxy = createProxy({
    logger: silentLogger,
    ...limits,
    routes: [
      {
        name: "echo",
        service: "meshlite.echo.v1.EchoService",
        target: `static:///${backends.map((b) => b.address).join(",")}`,
      },
    ],
  });
  ({ port } = await proxy.listen(`${host}:0`));
  await waitFor("both endpoints ready", () => proxy.ready().routes[0]?.readyEndpoints === 2);
});
afterAll(async () => {
  await proxy.close(500);
  await Promise.all(backends.map((b) => b.close()));
});

function limited(limit: string): number {
  const line = proxy.metrics
    .render()
    .split("\n")
    .find((l) => l.startsWith(`meshlite_proxy_client_limited_total{limit="${limit}"}`));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
}

/** Calls the backends started of one method (attacks use EchoIdempotent, the legit client Echo). */
function backendCalls(method = "EchoIdempotent"): number {
  return backends.reduce((n, b) => n + (b.calls.get(method) ?? 0), 0);
}
const attackPath = "/meshlite.echo.v1.EchoService/EchoIdempotent";

/** A well-behaved client calling through the proxy while `attack` runs; every call must succeed. */
async function whileAttacked(attack: () => Promise<void>): Promise<void> {
  // Its own connection, closed after: left open, it would idle out during a
  // later test and count as that test's idle_timeout.
  const sessionManager = new Http2SessionManager(`http://${host}:${port}`);
  const transport = createGrpcTransport({ baseUrl: `http://${host}:${port}`, sessionManager });
  const client = createClient(EchoService, transport);
  const load = startLoad(() => client.echo({ message: "legit" }), { concurrency: 2, intervalMs: 5 });
  await waitFor("legit calls to flow", () => load.result.ok > 10);
  const before = load.result.ok;
  await attack();
  // Calls after the attack too: the proxy still serves.
  await waitFor("legit calls after the attack", () => load.result.ok > before + 20);
  const result = await load.stop();
  sessionManager.abort();
  expect(result.errors).toEqual([]);
  expect(result.failed).toBe(0);
}

// Each attack connection comes from an address of its own (127.0.60.100 on), as
// from another host: the proxy refuses an address for a while after cutting it
// off (abusePenaltyMs), and the legit client, from 127.0.0.1, is not the attacker.
let attackers = 100;
function connectAttacker(options: { settings?: Array<[number, number]> } = {}): Promise<RawH2Client> {
  return connectRawH2(host, port, { ...options, localAddress: `127.0.60.${attackers++}` });
}

const requestBody = (message = "x", count = 0) =>
  envelope(Buffer.from(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message, count }))));

/** Yields to the event loop every `every` iterations, so the proxy (same process) gets to run. */
async function writeLoop(c: RawH2Client, n: number, every: number, step: (i: number) => void) {
  for (let i = 0; i < n && !c.received.closed; i++) {
    step(i);
    if (i % every === every - 1) await new Promise((r) => setImmediate(r));
  }
}

describe("the proxy against hostile HTTP/2 clients", () => {
  it("cuts off a rapid-reset client (CVE-2023-44487) after a bounded number of streams", async () => {
    const before = limited("rapid_reset");
    const callsBefore = backendCalls();
    let sent = 0;
    await whileAttacked(async () => {
      const c = await connectAttacker();
      await writeLoop(c, 20_000, 50, (i) => {
        const id = 1 + 2 * i;
        const body = frames.data(id, requestBody(), true);
        c.write(Buffer.concat([c.requestHeaders(id, { path: attackPath }), body, frames.rst(id)]));
        sent++;
      });
      expect(await c.waitClosed(10_000)).toBe(true);
      expect(c.received.goawayCode).toBe(ENHANCE_YOUR_CALM);
    });
    expect(limited("rapid_reset")).toBe(before + 1);
    // A stream reset in the packets that opened it is dropped before it is forwarded: almost
    // nothing reaches the backends (a stream whose frames TCP split may), far under the limit.
    const forwarded = backendCalls() - callsBefore;
    console.log(`rapid reset: ${sent} streams sent, ${forwarded} reached a backend`);
    expect(forwarded).toBeLessThanOrEqual(limits.maxPrematureResets / 10);
  });

  it("an attacker that reconnects after each cut-off cannot make the backends drop the proxy's connections", async () => {
    // Each forwarded reset is an RST_STREAM on a shared upstream connection, and
    // node:http2 servers (nghttp2) answer more than 1000 of them in a burst (33/s
    // after) with GOAWAY INTERNAL_ERROR, which fails every call on it. 40 cut-off
    // connections forward up to 4000 resets: the legit calls must not notice.
    // The attack's calls are slow ones, so each is still running at the backend when its reset comes.
    const slowCall = envelope(
      Buffer.from(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "x", delayMs: 200 }))),
    );
    const before = limited("rapid_reset");
    const accepted = () => backends.reduce((n, b) => n + b.acceptedConnections(), 0);
    const connectionsBefore = accepted();
    await whileAttacked(async () => {
      for (let round = 0; round < 40; round++) {
        const c = await connectAttacker();
        await writeLoop(c, 1000, 50, (i) => {
          const id = 1 + 2 * i;
          const body = frames.data(id, slowCall, true);
          c.write(Buffer.concat([c.requestHeaders(id, { path: attackPath }), body, frames.rst(id)]));
        });
        expect(await c.waitClosed(10_000)).toBe(true);
      }
    });
    expect(limited("rapid_reset")).toBe(before + 40);
    // The proxy's connections to the backends lived through it: none had to be dialled again.
    expect(accepted()).toBe(connectionsBefore);
  });

  it("refuses a cut-off attacker's address at accept for abusePenaltyMs, while other clients go on", async () => {
    const address = `127.0.60.${attackers++}`;
    const before = limited("abuse_penalty");
    let refused = 0;
    let cutOffAt = 0;
    let letInAt = 0;
    await whileAttacked(async () => {
      const c = await connectRawH2(host, port, { localAddress: address });
      await writeLoop(c, 20_000, 50, (i) => {
        const id = 1 + 2 * i;
        c.write(
          Buffer.concat([
            c.requestHeaders(id, { path: attackPath }),
            frames.data(id, requestBody(), true),
            frames.rst(id),
          ]),
        );
      });
      expect(await c.waitClosed(10_000)).toBe(true);
      expect(c.received.goawayCode).toBe(ENHANCE_YOUR_CALM);
      cutOffAt = performance.now();
      // Reconnecting at once: closed before the proxy says a word of HTTP/2.
      await expect(connectRawH2(host, port, { localAddress: address })).rejects.toThrow(
        /closed before the HTTP\/2 handshake/,
      );
      refused++;
      // Until the penalty (1000 ms by default) is over.
      await waitFor(
        "the attacker's address to be let in again",
        async () => {
          try {
            const again = await connectRawH2(host, port, { localAddress: address });
            letInAt = performance.now();
            again.destroy();
            return true;
          } catch {
            refused++;
            return false;
          }
        },
        { timeoutMs: 15_000, intervalMs: 50 },
      );
    });
    expect(letInAt - cutOffAt).toBeGreaterThanOrEqual(900);
    expect(limited("abuse_penalty")).toBe(before + refused);
  });

  it("a client that cancels some of its calls is not taken for an attacker", async () => {
    const before = limited("rapid_reset");
    const c = await connectAttacker();
    // 300 calls, every third reset before its answer: a third of the streams, over the count but under half.
    const answered = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const id = 1 + 2 * i;
      c.write(Buffer.concat([c.requestHeaders(id, { path: attackPath }), frames.data(id, requestBody(), true)]));
      if (i % 3 === 0) c.write(frames.rst(id));
      else answered.add(id);
      if (i % 20 === 19) await new Promise((r) => setImmediate(r));
    }
    await waitFor("the calls not reset to be answered", () => [...answered].every((id) => c.received.answered.has(id)));
    expect(c.received.closed).toBe(false);
    expect(c.received.goawayCode).toBeUndefined();
    expect(limited("rapid_reset")).toBe(before);
    c.destroy();
  });

  it("ends a CONTINUATION flood (CVE-2024-27316) and counts it", async () => {
    const before = limited("continuation_flood");
    await whileAttacked(async () => {
      const c = await connectAttacker();
      c.write(c.requestHeaders(1, { path: attackPath, endHeaders: false }));
      const block = headerBlock([["x-flood", "y".repeat(100)]]);
      await writeLoop(c, 100_000, 200, () => c.write(frames.continuation(1, block)));
      expect(await c.waitClosed(10_000)).toBe(true);
      expect(c.received.answered.size).toBe(0);
    });
    expect(limited("continuation_flood")).toBe(before + 1);
  });

  for (const [kind, frame] of [
    ["PING", () => frames.ping()],
    ["SETTINGS", () => frames.settings([[4, 65_535]])],
  ] as const) {
    it(`cuts off a ${kind} flood, even one paced so that it reads every answer`, async () => {
      const before = limited("control_flood");
      await whileAttacked(async () => {
        const c = await connectAttacker();
        // 20 frames per millisecond-ish turn: well over 100 a second, never enough to back up the output.
        await writeLoop(c, 100_000, 20, () => c.write(frame()));
        expect(await c.waitClosed(10_000)).toBe(true);
        expect(c.received.goawayCode).toBe(ENHANCE_YOUR_CALM);
      });
      expect(limited("control_flood")).toBe(before + 1);
    });
  }

  it("answers headers over the size or count limit with RESOURCE_EXHAUSTED, and counts them", async () => {
    const bytesBefore = limited("header_bytes");
    const pairsBefore = limited("header_pairs");
    const client = createClient(EchoService, createGrpcTransport({ baseUrl: `http://${host}:${port}` }));
    const big = await client.echo({ message: "x" }, { headers: { "x-big": "a".repeat(20_000) } }).catch((e) => e);
    expect(ConnectError.from(big).code).toBe(Code.ResourceExhausted);
    expect(String(big)).toMatch(/request headers are \d+ bytes, over the proxy's limit of 16384/);
    const many = new Headers();
    for (let i = 0; i < 200; i++) many.set(`x-h${i}`, "v");
    const tooMany = await client.echo({ message: "x" }, { headers: many }).catch((e) => e);
    expect(ConnectError.from(tooMany).code).toBe(Code.ResourceExhausted);
    expect(String(tooMany)).toMatch(/header fields, over the proxy's limit of 128/);
    expect(limited("header_bytes")).toBe(bytesBefore + 1);
    expect(limited("header_pairs")).toBe(pairsBefore + 1);
    // The connection is fine: the next call on it succeeds.
    expect((await client.echo({ message: "after" })).message).toBe("after");
  });

  it("fails a request message over the limit from its envelope, before reading it", async () => {
    const before = limited("message_bytes");
    const callsBefore = backendCalls();
    const c = await connectAttacker();
    // Declares 1 GiB and sends 5 bytes of it: the proxy must not wait for (or buffer) the rest.
    c.write(c.requestHeaders(1, { path: attackPath }));
    c.write(frames.data(1, envelope(Buffer.from("hello"), 1024 * 1024 * 1024)));
    await waitFor("the call to be answered", () => c.received.answered.has(1));
    await waitFor("the counter", () => limited("message_bytes") === before + 1);
    expect(backendCalls()).toBe(callsBefore);
    c.destroy();
  });

  it("closes connections that never start a call (slowloris), on every protocol", async () => {
    const before = limited("handshake_timeout");
    await whileAttacked(async () => {
      // Bare TCP, the HTTP/2 preface and SETTINGS only, and HTTP/1.1 headers that never end.
      const silent = net.connect({ host, port });
      silent.on("error", () => {});
      silent.resume();
      const h2 = await connectAttacker();
      const h1 = net.connect({ host, port });
      h1.on("error", () => {});
      // Read what the proxy answers (a 408/400), or the socket never sees its end.
      h1.resume();
      h1.write("POST /meshlite.echo.v1.EchoService/Echo HTTP/1.1\r\nhost: x\r\n");
      const trickle = setInterval(() => h1.write("x-slow: 1\r\n"), 200);
      const closed = (s: net.Socket) => new Promise<void>((resolve) => s.once("close", () => resolve()));
      try {
        await Promise.all([closed(silent), h2.waitClosed(15_000), closed(h1)]);
      } finally {
        clearInterval(trickle);
      }
      expect(h2.received.closed).toBe(true);
    });
    expect(limited("handshake_timeout")).toBe(before + 3);
  });

  it("cancels calls whose client never ends its request, upstream too", async () => {
    const before = limited("stream_idle");
    const resetsBefore = limited("rapid_reset");
    // More than maxPrematureResets: the proxy's own cancels are not the client's resets.
    const ids = Array.from({ length: limits.maxPrematureResets + 20 }, (_, i) => 1 + 2 * i);
    await whileAttacked(async () => {
      const c = await connectAttacker();
      for (const id of ids) {
        c.write(c.requestHeaders(id, { path: "/meshlite.echo.v1.EchoService/ClientStream" }));
        c.write(frames.data(id, requestBody("part")));
      }
      await waitFor("the proxy to reset every stream", () => ids.every((id) => c.received.resets.has(id)), {
        timeoutMs: 20_000,
      });
      expect(c.received.goawayCode).toBeUndefined();
      c.destroy();
    });
    expect(limited("stream_idle")).toBeGreaterThanOrEqual(before + ids.length);
    expect(limited("rapid_reset")).toBe(resetsBefore);
    await waitFor("no call left in flight at the proxy", () => proxy.inFlight() === 0);
    await waitFor("no call left at the backends", () => backends.every((b) => b.inFlight() === 0));
  });

  it("holds a bounded amount for a reader that stops reading, and lets the call go", async () => {
    const before = limited("stream_idle");
    // 8 KB messages, 32000 of them (256 MB) asked for by a client whose receive window is 0.
    const c = await connectAttacker({ settings: [[4, 0]] });
    const message = "m".repeat(8 * 1024);
    c.write(c.requestHeaders(1, { path: "/meshlite.echo.v1.EchoService/ServerStream" }));
    c.write(frames.data(1, requestBody(message, 32_000), true));
    await waitFor("the response to start", () => c.received.answered.has(1));
    await waitFor("the stalled call to be cancelled", () => limited("stream_idle") > before, { timeoutMs: 20_000 });
    global.gc?.();
    // The proxy (and the backend, in this process) buffered what flow control allows, not the 256 MB asked for.
    expect(process.memoryUsage().arrayBuffers).toBeLessThan(64 * 1024 * 1024);
    expect(c.received.frames.get(FrameType.data) ?? 0).toBe(0);
    await waitFor("the backend's stream to end", () => backends.every((b) => b.inFlight() === 0));
    c.destroy();
  });

  it("is no open relay: a call for an address outside the routes gets a gRPC error, never a connection", async () => {
    let dialled = 0;
    const trap = net.createServer((s) => {
      dialled++;
      s.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, "127.0.60.99", resolve));
    const trapAddress = `127.0.60.99:${(trap.address() as net.AddressInfo).port}`;
    try {
      const c = await connectAttacker();
      // Another service (no route), then the routed service with the trap as :authority.
      c.write(c.requestHeaders(1, { authority: trapAddress, path: "/other.v1.Service/Call" }));
      c.write(frames.data(1, requestBody(), true));
      c.write(c.requestHeaders(3, { authority: trapAddress, path: attackPath }));
      c.write(frames.data(3, requestBody(), true));
      await waitFor("both answered", () => c.received.answered.has(1) && c.received.answered.has(3));
      c.destroy();
      expect(dialled).toBe(0);
    } finally {
      trap.close();
    }
  });

  it("does not serve /metrics or /healthz on the call port", async () => {
    for (const path of ["/metrics", "/healthz"]) {
      const res = await fetch(`http://${host}:${port}${path}`);
      expect(res.status).not.toBe(200);
      expect(await res.text()).not.toMatch(/meshlite_proxy_calls_total|readyEndpoints/);
    }
  });

  it("closes an idle HTTP/2 connection with GOAWAY after clientIdleTimeoutMs", async () => {
    const before = limited("idle_timeout");
    const c = await connectAttacker();
    c.write(c.requestHeaders(1, { path: attackPath }));
    c.write(frames.data(1, requestBody(), true));
    await waitFor("the call to be answered", () => c.received.answered.has(1));
    await waitFor("GOAWAY after the idle time", () => c.received.goawayCode !== undefined, { timeoutMs: 15_000 });
    expect(c.received.goawayCode).toBe(0);
    expect(limited("idle_timeout")).toBe(before + 1);
    c.destroy();
  });
});
