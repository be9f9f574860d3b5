import { randomBytes } from "node:crypto";
import * as http from "node:http";
import * as http2 from "node:http2";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { closedPort } from "./support/free-port.js";
import { createH2FrameCounter } from "./support/h2-frame-counter.js";
import { startLoad } from "./support/load.js";
import { startRawGoawayServer } from "./support/raw-h2-server.js";
import { startTcpForwarder } from "./support/tcp-forwarder.js";
import { waitFor } from "./support/wait-for.js";

// Four real backends behind one proxy; clients reach them through a single
// connection to the proxy, which balances every call.
let backends: EchoBackend[];
let proxy: MeshliteProxy;
let baseUrl: string;
let deadPort: number;

beforeAll(async () => {
  backends = await Promise.all([21, 22, 23, 24].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
  deadPort = await closedPort("127.0.0.29");
  proxy = createProxy({
    logger: silentLogger,
    waitForReadyMs: 1000,
    maxMessageBytes: 20 * 1024 * 1024,
    routes: [
      { name: "dead", service: "meshlite.echo.v1.DeadService", target: `static:///127.0.0.29:${deadPort}` },
      { name: "other", authority: "other.example", target: `static:///${backends[0]!.address}` },
      {
        name: "echo",
        service: "meshlite.echo.v1.EchoService",
        target: `static:///${backends.map((b) => b.address).join(",")}`,
        balancer: "round-robin",
      },
    ],
  });
  const bound = await proxy.listen("127.0.0.20:0");
  baseUrl = `http://127.0.0.20:${bound.port}`;
  await waitFor("every endpoint of the echo route to be ready", () =>
    proxy.ready().routes.find((r) => r.route === "echo")?.readyEndpoints === 4 ? true : undefined,
  );
});
afterAll(async () => {
  await proxy.close(1000);
  await Promise.all(backends.map((b) => b.close()));
});

function resetCounts() {
  for (const b of backends) b.calls.clear();
}

const transports: Record<string, () => Transport> = {
  "gRPC over h2c": () => createGrpcTransport({ baseUrl, httpVersion: "2" } as never),
  "Connect over h2c": () => createConnectTransport({ baseUrl, httpVersion: "2" }),
  "Connect over HTTP/1.1": () => createConnectTransport({ baseUrl, httpVersion: "1.1" }),
  "gRPC-web over HTTP/1.1": () => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
};

/** Calls Echo as if it belonged to another service (another path). */
function callService(transport: Transport, typeName: string) {
  const method = { ...EchoService.method.echo, parent: { ...EchoService, typeName } };
  return transport.unary(method, undefined, undefined, undefined, { message: "x" });
}

async function* messages(count: number, payload?: Uint8Array) {
  for (let i = 0; i < count; i++) yield { message: `m${i}`, ...(payload ? { payload } : {}) };
}

describe.each(Object.keys(transports))("%s through the proxy", (name) => {
  const streaming = !name.includes("HTTP/1.1");
  it("spreads unary calls evenly over the four backends", async () => {
    const client = createClient(EchoService, transports[name]!());
    resetCounts();
    const byServer = new Map<string, number>();
    const total = 400;
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < total) {
          const i = next++;
          const r = await client.echo({ message: `u${i}` });
          expect(r.message).toBe(`u${i}`);
          byServer.set(r.server, (byServer.get(r.server) ?? 0) + 1);
        }
      }),
    );
    expect([...byServer.keys()].sort()).toEqual(backends.map((b) => b.address).sort());
    for (const n of byServer.values()) {
      expect(n).toBeGreaterThanOrEqual(total / 4 - total / 40);
      expect(n).toBeLessThanOrEqual(total / 4 + total / 40);
    }
  });

  it("forwards server streams", async () => {
    const client = createClient(EchoService, transports[name]!());
    const indexes: number[] = [];
    for await (const m of client.serverStream({ message: "s", count: 50 })) indexes.push(m.index);
    expect(indexes).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it.runIf(streaming)("forwards client streams and bidi streams", async () => {
    const client = createClient(EchoService, transports[name]!());
    const joined = await client.clientStream(messages(100));
    expect(joined.index).toBe(100);
    let n = 0;
    for await (const m of client.bidi(messages(20))) expect(m.message).toBe(`m${n++}`);
    expect(n).toBe(20);
  });

  it("passes backend errors through with their code and message", async () => {
    const client = createClient(EchoService, transports[name]!());
    const error = await client.echo({ message: "x", failCode: Code.NotFound }).catch((e) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.NotFound);
    expect((error as ConnectError).rawMessage).toContain("failing as asked");
  });

  it("answers a call that matches no route with UNIMPLEMENTED naming the routes", async () => {
    const transport = transports[name]!();
    const error = ConnectError.from(await callService(transport, "meshlite.echo.v1.Unknown").catch((e) => e));
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toContain('no route for authority "127.0.0.20:');
    expect(error.rawMessage).toContain("service: meshlite.echo.v1.EchoService");
  });

  it("fails with UNAVAILABLE naming the target when no endpoint is reachable", async () => {
    const error = ConnectError.from(
      await callService(transports[name]!(), "meshlite.echo.v1.DeadService").catch((e) => e),
    );
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toContain(`127.0.0.29:${deadPort}`);
  });
});

describe("gRPC over one h2c connection", () => {
  const client = () => createClient(EchoService, createGrpcTransport({ baseUrl }));

  it("streams 10 000 bidi messages with backpressure", async () => {
    const payload = new Uint8Array(1024).fill(7);
    let received = 0;
    for await (const m of client().bidi(messages(10_000, payload))) {
      expect(m.index).toBe(received++);
      expect(m.payload.length).toBe(1024);
    }
    expect(received).toBe(10_000);
  });

  it("carries a 16 MiB message both ways", async () => {
    const payload = new Uint8Array(16 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 4096) payload[i] = i % 251;
    const r = await client().echo({ message: "big", payload });
    expect(r.payload.length).toBe(payload.length);
    expect(Buffer.compare(Buffer.from(r.payload), Buffer.from(payload))).toBe(0);
  });

  it("refuses a message over the limit with RESOURCE_EXHAUSTED and stays up", async () => {
    // A second proxy with a 1 MiB limit (Node's HTTP/2 client cannot write a
    // single chunk over its 10 MB session memory while the server answers early).
    const own = await startEchoBackend({ host: "127.0.0.25" });
    const small = createProxy({
      logger: silentLogger,
      maxMessageBytes: 1024 * 1024,
      routes: [{ target: `static:///${own.address}` }],
    });
    const { port } = await small.listen("127.0.0.20:0");
    try {
      const c = createClient(EchoService, createGrpcTransport({ baseUrl: `http://127.0.0.20:${port}` }));
      const error = ConnectError.from(
        await c.echo({ message: "huge", payload: randomBytes(2 * 1024 * 1024) }).catch((e) => e),
      );
      expect(error.rawMessage).toContain("over the proxy's limit of 1048576");
      expect(error.code).toBe(Code.ResourceExhausted);
      // A response over the limit: the request fits, the echo adds the server's
      // name. Random bytes, as limits apply to the (possibly compressed) wire size.
      const big = await c
        .bidi(messages(1, randomBytes(1024 * 1024 - 13)))
        [Symbol.asyncIterator]()
        .next()
        .catch((e) => ConnectError.from(e));
      expect((big as ConnectError).code).toBe(Code.ResourceExhausted);
      expect((big as ConnectError).rawMessage).toContain("response message of");
      expect((await c.echo({ message: "after" })).message).toBe("after");
    } finally {
      await small.close(100);
      await own.kill();
    }
  });

  it("passes the deadline on: the backend stops when it expires", async () => {
    const started = performance.now();
    const error = ConnectError.from(
      await client()
        .echo({ message: "slow", delayMs: 10_000 }, { timeoutMs: 300 })
        .catch((e) => e),
    );
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(performance.now() - started).toBeLessThan(5000);
    await waitFor("the backends to drop the expired call", () => backends.every((b) => b.inFlight() === 0));
  });

  it("cancels the upstream stream when the client cancels", async () => {
    const abort = new AbortController();
    const stream = client().serverStream({ message: "c", count: 1000, delayMs: 50 }, { signal: abort.signal });
    const reading = (async () => {
      for await (const _ of stream) abort.abort();
    })().catch((e) => ConnectError.from(e));
    const error = await reading;
    expect(error?.code).toBe(Code.Canceled);
    await waitFor("the backend to see the cancel", () => backends.every((b) => b.inFlight() === 0));
    await waitFor("the proxy to end the call", () => proxy.inFlight() === 0);
  });

  it("cancels the upstream stream when an HTTP/1.1 client goes away", async () => {
    const abort = new AbortController();
    const c = createClient(EchoService, createConnectTransport({ baseUrl, httpVersion: "1.1" }));
    const error = await (async () => {
      for await (const _ of c.serverStream({ message: "c", count: 1000, delayMs: 50 }, { signal: abort.signal })) {
        abort.abort();
      }
    })().catch((e) => ConnectError.from(e));
    expect(error?.code).toBe(Code.Canceled);
    await waitFor("the backend to see the cancel", () => backends.every((b) => b.inFlight() === 0));
    await waitFor("the proxy to end the call", () => proxy.inFlight() === 0);
  });

  it("turns a backend dying mid-stream into UNAVAILABLE", async () => {
    const own = await startEchoBackend({ host: "127.0.0.27" });
    const p = createProxy({ logger: silentLogger, routes: [{ target: `static:///${own.address}` }] });
    const { port } = await p.listen("127.0.0.20:0");
    try {
      const c = createClient(EchoService, createGrpcTransport({ baseUrl: `http://127.0.0.20:${port}` }));
      let received = 0;
      const error = await (async () => {
        for await (const _ of c.serverStream({ message: "d", count: 1000, delayMs: 20 })) {
          if (++received === 2) void own.kill();
        }
      })().catch((e) => ConnectError.from(e));
      expect(error?.code).toBe(Code.Unavailable);
      expect(error?.rawMessage).toContain(`upstream ${own.address} (route static:///${own.address}) failed`);
    } finally {
      await p.close(100);
    }
  });

  it("tells the deadline to the backend in grpc-timeout", async () => {
    // A raw backend that records the headers it gets.
    const seen: http2.IncomingHttpHeaders[] = [];
    const raw = http2.createServer();
    raw.on("stream", (stream, headers) => {
      seen.push(headers);
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
    });
    await new Promise<void>((r) => raw.listen(0, "127.0.0.28", r));
    const rawProxy = createProxy({
      logger: silentLogger,
      routes: [{ target: `static:///127.0.0.28:${(raw.address() as { port: number }).port}` }],
    });
    const { port } = await rawProxy.listen("127.0.0.20:0");
    try {
      const c = createClient(EchoService, createGrpcTransport({ baseUrl: `http://127.0.0.20:${port}` }));
      await c.echo({ message: "t" }, { timeoutMs: 5000, headers: { "x-custom": "kept" } });
      const h = seen[0]!;
      const ms = Number(String(h["grpc-timeout"]).replace(/m$/, ""));
      expect(ms).toBeGreaterThan(4000);
      expect(ms).toBeLessThanOrEqual(5000);
      expect(h["x-custom"]).toBe("kept");
      expect(h[":authority"]).toBe(`127.0.0.20:${port}`);
      expect(h.te).toBe("trailers");
      // Connect's connect-timeout-ms too (the raw backend's answer is not Connect; only the header matters).
      const connect = createClient(
        EchoService,
        createConnectTransport({ baseUrl: `http://127.0.0.20:${port}`, httpVersion: "2" }),
      );
      await connect.echo({ message: "t" }, { timeoutMs: 5000 }).catch(() => {});
      const c2 = Number(seen[1]!["connect-timeout-ms"]);
      expect(c2).toBeGreaterThan(4000);
      expect(c2).toBeLessThanOrEqual(5000);
    } finally {
      await rawProxy.close(100);
      await new Promise((r) => raw.close(r));
    }
  });
});

describe("backends going away", () => {
  it("a backend shutting down gracefully under load costs no call", async () => {
    const own = await Promise.all([35, 36, 37].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
    const p = createProxy({
      logger: silentLogger,
      routes: [{ target: `static:///${own.map((b) => b.address).join(",")}`, balancer: "round-robin" }],
    });
    const { port } = await p.listen("127.0.0.20:0");
    try {
      await waitFor("all endpoints ready", () => p.ready().routes[0]?.readyEndpoints === 3);
      const c = createClient(EchoService, createGrpcTransport({ baseUrl: `http://127.0.0.20:${port}` }));
      const load = startLoad(() => c.echo({ message: "g", delayMs: 20 }), { concurrency: 8, intervalMs: 1 });
      await waitFor("calls on every backend", () => own.every((b) => b.totalCalls() > 20));
      await own[0]!.close(); // GOAWAY, in-flight calls finish, then the listener closes
      const ok = load.result.ok;
      await waitFor("more calls after the shutdown", () => load.result.ok > ok + 200);
      const result = await load.stop();
      expect(result.errors).toEqual([]);
      expect(result.failed).toBe(0);
    } finally {
      await p.close(100);
      await Promise.all(own.map((b) => b.close()));
    }
  });
});

describe("upstream framing", () => {
  it("forwards a unary request as one DATA frame with END_STREAM, as the client sent it", async () => {
    const own = await startEchoBackend({ host: "127.0.0.40" });
    const frames = createH2FrameCounter();
    const tap = await startTcpForwarder("127.0.0.41", own, { onClientData: () => frames.connection() });
    const p = createProxy({ logger: silentLogger, routes: [{ target: `static:///${tap.address}` }] });
    const { port } = await p.listen("127.0.0.20:0");
    try {
      const c = createClient(EchoService, createGrpcTransport({ baseUrl: `http://127.0.0.20:${port}` }));
      for (let i = 0; i < 20; i++) expect((await c.echo({ message: `u${i}` })).message).toBe(`u${i}`);
      expect(frames.headers()).toBe(20);
      // Not a DATA frame and then an empty one to end the stream: the backend
      // handles one frame per request, as with a direct call.
      expect(frames.data()).toEqual({ withEnd: 20, withoutEnd: 0 });
      // Streams still flow message by message.
      const joined = await c.clientStream(messages(5));
      expect(joined.message).toBe("m0,m1,m2,m3,m4");
    } finally {
      await p.close(100);
      await tap.close();
      await own.close();
    }
  });
});

describe("calls that never reached a server", () => {
  it("are resent to another endpoint when GOAWAY says the stream was not processed", async () => {
    const goaway = await startRawGoawayServer("127.0.0.38");
    const good = await startEchoBackend({ host: "127.0.0.39" });
    const p = createProxy({
      logger: silentLogger,
      routes: [{ target: `static:///${goaway.address},${good.address}`, balancer: "round-robin" }],
    });
    const { port } = await p.listen("127.0.0.20:0");
    try {
      await waitFor("both endpoints ready", () => p.ready().routes[0]?.readyEndpoints === 2);
      const c = createClient(EchoService, createGrpcTransport({ baseUrl: `http://127.0.0.20:${port}` }));
      for (let i = 0; i < 6; i++) {
        expect((await c.echo({ message: `g${i}` }, { timeoutMs: 10_000 })).server).toBe(good.address);
      }
      // Client streams of 1.6 MiB, over the proxy's 1 MiB replay buffer: the
      // GOAWAY server's flow-control window holds the first attempt to 64 KiB,
      // so what was sent fits the replay, and the rest follows on the resend.
      const payload = new Uint8Array(16 * 1024).fill(3);
      for (let i = 0; i < 4; i++) {
        const joined = await c.clientStream(messages(100, payload), { timeoutMs: 10_000 });
        expect(joined.index).toBe(100);
        expect(joined.message).toBe(Array.from({ length: 100 }, (_, j) => `m${j}`).join(","));
      }
      expect(goaway.streams()).toBeGreaterThan(0);
    } finally {
      await p.close(100);
      await goaway.close();
      await good.close();
    }
  });
});

describe("outlier ejection", () => {
  it("stops sending calls to a backend whose calls keep failing", async () => {
    const own = await Promise.all([26, 27].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
    const p = createProxy({
      logger: silentLogger,
      routes: [
        {
          target: `static:///${own.map((b) => b.address).join(",")}`,
          balancer: "round-robin",
          outlierDetection: { consecutiveFailures: 3, maxEjectionPercent: 50 },
        },
      ],
    });
    const { port } = await p.listen("127.0.0.20:0");
    try {
      await waitFor("both endpoints ready", () => p.ready().routes[0]?.readyEndpoints === 2);
      own[0]!.setFailCode(Code.Unavailable);
      const c = createClient(EchoService, createGrpcTransport({ baseUrl: `http://127.0.0.20:${port}` }));
      let failed = 0;
      for (let i = 0; i < 10; i++) await c.echo({ message: "e" }).catch(() => failed++);
      expect(failed).toBe(3);
      const before = own[0]!.totalCalls();
      for (let i = 0; i < 20; i++) expect((await c.echo({ message: "e" })).server).toBe(own[1]!.address);
      expect(own[0]!.totalCalls()).toBe(before);
    } finally {
      await p.close(100);
      await Promise.all(own.map((b) => b.close()));
    }
  });
});

describe("bad requests", () => {
  function rawRequest(headers: http2.OutgoingHttpHeaders, body?: Buffer) {
    return new Promise<{ headers: http2.IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const session = http2.connect(baseUrl);
      session.on("error", reject);
      const req = session.request({ ":method": "POST", ":path": "/meshlite.echo.v1.EchoService/Echo", ...headers });
      let data = "";
      let response: http2.IncomingHttpHeaders = {};
      req.on("response", (h) => {
        response = h;
      });
      req.on("data", (c) => {
        data += c;
      });
      req.on("close", () => {
        session.close();
        resolve({ headers: response, body: data });
      });
      req.end(body);
    });
  }

  it("routes by :authority", async () => {
    resetCounts();
    // An empty EchoRequest in a gRPC envelope, addressed to other.example.
    const r = await rawRequest(
      { ":authority": "other.example", "content-type": "application/grpc", te: "trailers" },
      Buffer.alloc(5),
    );
    expect(r.headers[":status"]).toBe(200);
    expect(backends[0]!.totalCalls()).toBe(1);
    expect(backends.slice(1).every((b) => b.totalCalls() === 0)).toBe(true);
  });

  it("explains an unsupported content type", async () => {
    const r = await rawRequest({ "content-type": "text/plain" }, Buffer.from("hello"));
    expect(r.headers[":status"]).toBe(415);
    expect(r.body).toContain("meshlite-proxy forwards gRPC");
  });

  it("explains a malformed grpc-timeout", async () => {
    const r = await rawRequest({ "content-type": "application/grpc", te: "trailers", "grpc-timeout": "soon" });
    expect(r.headers["grpc-status"]).toBe(String(Code.InvalidArgument));
    expect(decodeURIComponent(String(r.headers["grpc-message"]))).toContain('malformed grpc-timeout header "soon"');
  });

  it("refuses oversized headers with RESOURCE_EXHAUSTED and stays up", async () => {
    const client = createClient(EchoService, createGrpcTransport({ baseUrl }));
    const error = ConnectError.from(
      await client.echo({ message: "x" }, { headers: { "x-big": "a".repeat(20_000) } }).catch((e) => e),
    );
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toContain("over the proxy's limit of 16384");
    expect((await client.echo({ message: "after" })).message).toBe("after");
  });

  it("answers 431 to oversized HTTP/1.1 headers", async () => {
    const url = new URL(baseUrl);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: url.hostname, port: url.port, method: "POST", path: "/x/y", headers: { "x-big": "a".repeat(40_000) } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    expect(status).toBe(431);
  });

  it("keeps serving after a garbage connection", async () => {
    const net = await import("node:net");
    const url = new URL(baseUrl);
    await new Promise<void>((resolve) => {
      const socket = net.connect(Number(url.port), url.hostname, () => socket.end("PRI * HTTP/2.0\r\n\r\nXX garbage"));
      socket.on("error", () => resolve());
      socket.on("close", () => resolve());
      socket.resume();
    });
    const client = createClient(EchoService, createGrpcTransport({ baseUrl }));
    expect((await client.echo({ message: "still" })).message).toBe("still");
  });
});
