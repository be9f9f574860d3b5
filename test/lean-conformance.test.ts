// Conformance matrix of the lean gRPC transport: the same cases run with the lean transport (on
// connect-node's session manager, and on meshlite's own HTTP/2 as the channel runs it) and with
// connect-node's createGrpcTransport, against a connect-node server and a @grpc/grpc-js server,
// so that a difference in behaviour shows up as a failing case for one of them.
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  createContextKey,
  decodeBinaryHeader,
  encodeBinaryHeader,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { createLeanGrpcTransport, type LeanGrpcTransportOptions } from "@meshlite/transport";
import { createFrameEngineConnection } from "@meshlite/transport/connection";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type ConformanceRequestSchema,
  ConformanceService,
  ErrorDetailSchema,
  UnknownService,
} from "../gen/meshlite/conformance/v1/conformance_pb.js";
import {
  type ConformanceServer,
  type ConformanceServerKind,
  startConformanceServer,
} from "./support/lean-conformance-servers.js";
import { type RawMode, startRawServer } from "./support/lean-raw-server.js";
import { waitFor } from "./support/wait-for.js";

type ClientKind = "lean" | "lean-frames" | "connect-node";
type Req = MessageInitShape<typeof ConformanceRequestSchema>;

const combos: { client: ClientKind; server: ConformanceServerKind }[] = [
  { client: "lean", server: "connect" },
  { client: "lean", server: "grpc-js" },
  { client: "lean-frames", server: "connect" },
  { client: "lean-frames", server: "grpc-js" },
  { client: "connect-node", server: "connect" },
  { client: "connect-node", server: "grpc-js" },
];

const MiB = 1024 * 1024;

/** The client's transport; `cleanups` gets what closes its connection. */
function makeTransport(kind: ClientKind, options: LeanGrpcTransportOptions, cleanups: Array<() => void>): Transport {
  if (kind === "lean-frames") {
    const url = new URL(options.baseUrl);
    const connection = createFrameEngineConnection({
      origin: url.origin,
      address: { host: url.hostname, port: Number(url.port) },
    });
    cleanups.push(() => void connection.close({ destroy: true }));
    return createLeanGrpcTransport({ ...options, connection });
  }
  const sessionManager = new Http2SessionManager(options.baseUrl);
  cleanups.push(() => sessionManager.abort());
  const withManager = { ...options, sessionManager };
  return kind === "lean" ? createLeanGrpcTransport(withManager) : createGrpcTransport(withManager);
}

function bytes(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function* requests(list: Req[], gate?: (i: number) => Promise<void>): AsyncIterable<Req> {
  for (let i = 0; i < list.length; i++) {
    await gate?.(i);
    yield list[i]!;
  }
}

/** Runs fn and returns the ConnectError it throws (fails the test if it does not throw one). */
async function failure(fn: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectError);
    return e as ConnectError;
  }
  throw new Error("expected the call to fail");
}

let callSeq = 0;
const callId = () => `call-${process.pid}-${++callSeq}`;

describe.each(combos)("$client client, $server server", ({ client, server: serverKind }) => {
  let server: ConformanceServer;
  let cleanups: Array<() => void> = [];

  beforeAll(async () => {
    server = await startConformanceServer(serverKind);
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(() => {
    for (const c of cleanups) c();
    cleanups = [];
  });

  function transportFor(baseUrl: string, options: Partial<LeanGrpcTransportOptions> = {}): Transport {
    return makeTransport(client, { baseUrl, ...options }, cleanups);
  }
  const clientFor = (options: Partial<LeanGrpcTransportOptions> = {}) =>
    createClient(ConformanceService, transportFor(server.baseUrl, options));

  describe("message counts and sizes", () => {
    it("unary: one message, an empty message, 4 MiB each way", async () => {
      const c = clientFor();
      expect((await c.unary({ payload: bytes(10) })).payload).toEqual(bytes(10));
      const empty = await c.unary({});
      expect(empty.payload.byteLength).toBe(0);
      expect(empty.index).toBe(0);
      const big = await c.unary({ payload: bytes(4 * MiB, 3) });
      // (decompressed payloads are Buffers, with either client: compare bytes)
      expect(Buffer.from(big.payload).equals(Buffer.from(bytes(4 * MiB, 3)))).toBe(true);
    });

    it("server stream: 0, 1 and many messages; 4 MiB messages", async () => {
      const c = clientFor();
      for (const count of [0, 1, 50]) {
        const got: number[] = [];
        for await (const r of c.serverStream({ responseCount: count, payload: bytes(3) })) got.push(r.index);
        expect(got).toEqual([...Array(count).keys()]);
      }
      const sizes: number[] = [];
      for await (const r of c.serverStream({ responseCount: 2, responseSize: 4 * MiB })) sizes.push(r.payload.length);
      expect(sizes).toEqual([4 * MiB, 4 * MiB]);
    });

    it("client stream: 0, 1 and many messages; a 4 MiB message", async () => {
      const c = clientFor();
      for (const count of [0, 1, 50]) {
        const list = Array.from({ length: count }, () => ({ payload: bytes(5) }));
        const r = await c.clientStream(requests(list));
        expect(r.requestCount).toBe(count);
        expect(r.requestBytes).toBe(BigInt(count * 5));
      }
      const r = await c.clientStream(requests([{ payload: bytes(4 * MiB) }, { payload: bytes(1) }]));
      expect(r.requestBytes).toBe(BigInt(4 * MiB + 1));
    });

    it("bidi: 0, 1 and many messages, and ping-pong", async () => {
      const c = clientFor();
      for (const count of [0, 1, 30]) {
        const list = Array.from({ length: count }, () => ({ responseCount: 1, payload: bytes(4) }));
        const got: number[] = [];
        for await (const r of c.bidi(requests(list))) got.push(r.index);
        expect(got).toEqual([...Array(count).keys()]);
      }
      // Each request is sent only after the previous response arrived: full duplex.
      let received = 0;
      const waiters: (() => void)[] = [];
      const gate = async (i: number) => {
        if (i === 0) return;
        await new Promise<void>((resolve) => (received >= i ? resolve() : waiters.push(resolve)));
      };
      const list = Array.from({ length: 10 }, () => ({ responseCount: 1 }));
      for await (const _ of c.bidi(requests(list, gate))) {
        received++;
        for (const w of waiters.splice(0)) w();
      }
      expect(received).toBe(10);
    });
  });

  describe("status", () => {
    it("every error code with message and details, unary and streaming", async () => {
      const c = clientFor();
      for (let code = 1; code <= 16; code++) {
        const message = `failure ${Code[code]}`;
        const err = await failure(() => c.unary({ errorCode: code, errorMessage: message, errorDetails: true }));
        expect(err.code).toBe(code);
        expect(err.rawMessage).toBe(message);
        const details = err.findDetails(ErrorDetailSchema);
        expect(details).toHaveLength(1);
        expect(details[0]!.reason).toBe(message);
        expect(details[0]!.index).toBe(code);

        const got: number[] = [];
        const streamErr = await failure(async () => {
          for await (const r of c.serverStream({ responseCount: 2, errorCode: code, errorMessage: message })) {
            got.push(r.index);
          }
        });
        expect(got).toEqual([0, 1]);
        expect(streamErr.code).toBe(code);
        expect(streamErr.rawMessage).toBe(message);
      }
    });

    it("unicode and percent-encoded messages arrive unchanged", async () => {
      const c = clientFor();
      for (const message of ["héllo wörld ✓ 日本語 🚀", "100% done, %41%42 is not AB", "tab\there / slash ? & = +"]) {
        const err = await failure(() => c.unary({ errorCode: Code.InvalidArgument, errorMessage: message }));
        expect(err.rawMessage).toBe(message);
      }
    });

    it("unknown method and unknown service fail with UNIMPLEMENTED", async () => {
      const c = clientFor();
      expect((await failure(() => c.notImplemented({}))).code).toBe(Code.Unimplemented);
      const unknown = createClient(UnknownService, transportFor(server.baseUrl));
      expect((await failure(() => unknown.unary({}))).code).toBe(Code.Unimplemented);
    });
  });

  describe("metadata", () => {
    const bin = new Uint8Array([0, 1, 2, 250, 255]);
    const headers: [string, string][] = [
      ["x-test-plain", "value 1"],
      ["x-test-dup", "first"],
      ["x-test-dup", "second"],
      ["x-test-data-bin", encodeBinaryHeader(bin)],
    ];
    function check(header: Headers | undefined, trailer: Headers | undefined) {
      expect(header?.get("x-test-plain")).toBe("value 1");
      expect(header?.get("x-test-dup")).toMatch(/first.*second/);
      expect(decodeBinaryHeader(header?.get("x-test-data-bin") ?? "")).toEqual(bin);
      expect(trailer?.get("x-trailer-plain")).toBe("value 1");
      expect(decodeBinaryHeader(trailer?.get("x-trailer-data-bin") ?? "")).toEqual(bin);
    }

    it("request and response metadata, -bin and repeated, unary", async () => {
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      await clientFor().unary({}, { headers, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) });
      check(header, trailer);
    });

    it("request and response metadata, streaming", async () => {
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      const c = clientFor();
      for await (const _ of c.serverStream(
        { responseCount: 2 },
        { headers, onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
      )) {
        // drain
      }
      check(header, trailer);
    });

    it("error metadata includes the trailers", async () => {
      const err = await failure(() =>
        clientFor().unary({ errorCode: Code.Aborted, errorMessage: "x" }, { headers: [["x-test-k", "v"]] }),
      );
      expect(err.metadata.get("x-trailer-k")).toBe("v");
    });
  });

  describe("compression", () => {
    it("gzip both ways, unary and streaming", async () => {
      const c = clientFor({ sendCompression: compressionGzip, compressMinBytes: 1 });
      let header: Headers | undefined;
      const r = await c.unary({ payload: bytes(100_000), responseSize: 100_000 }, { onHeader: (h) => (header = h) });
      expect(r.payload.byteLength).toBe(100_000);
      // grpc-js hides grpc-encoding from its handlers and does not compress responses here;
      // the connect-node server reports what it saw and compresses its response.
      if (serverKind === "connect") {
        expect(header?.get("x-seen-encoding")).toBe("gzip");
        expect(header?.get("grpc-encoding")).toBe("gzip");
      }
      let count = 0;
      for await (const m of c.bidi(requests([{ responseCount: 2, responseSize: 50_000, payload: bytes(50_000) }]))) {
        expect(m.payload.byteLength).toBe(50_000);
        count++;
      }
      expect(count).toBe(2);
    });
  });

  describe("limits", () => {
    it("readMaxBytes and writeMaxBytes fail with RESOURCE_EXHAUSTED", async () => {
      const c = clientFor({ readMaxBytes: 1000, writeMaxBytes: 1000 });
      expect((await failure(() => c.unary({ responseSize: 4000 }))).code).toBe(Code.ResourceExhausted);
      expect((await failure(() => c.unary({ payload: bytes(4000) }))).code).toBe(Code.ResourceExhausted);
      expect(
        (
          await failure(async () => {
            for await (const _ of c.serverStream({ responseCount: 1, responseSize: 4000 })) {
              // drain
            }
          })
        ).code,
      ).toBe(Code.ResourceExhausted);
    });
  });

  describe("deadlines and cancellation", () => {
    it("deadline exceeded: unary, before a stream's first message, during a stream", async () => {
      const c = clientFor();
      expect((await failure(() => c.unary({ delayMs: 5000 }, { timeoutMs: 150 }))).code).toBe(Code.DeadlineExceeded);
      const before: number[] = [];
      const e1 = await failure(async () => {
        for await (const r of c.serverStream({ responseCount: 3, delayMs: 5000 }, { timeoutMs: 150 })) {
          before.push(r.index);
        }
      });
      expect(e1.code).toBe(Code.DeadlineExceeded);
      expect(before).toEqual([]);
      const during: number[] = [];
      const e2 = await failure(async () => {
        for await (const r of c.serverStream(
          { responseCount: 5, delayMs: 10000, delayAfter: 2 },
          { timeoutMs: 1500 },
        )) {
          during.push(r.index);
        }
      });
      expect(e2.code).toBe(Code.DeadlineExceeded);
      expect(during).toEqual([0, 1]);
    });

    it("client cancel mid-stream: the call fails with CANCELED and the server sees it", async () => {
      const c = clientFor();
      const id = callId();
      const abort = new AbortController();
      const got: number[] = [];
      const err = await failure(async () => {
        for await (const r of c.serverStream(
          { responseCount: 5, delayMs: 5000, delayAfter: 1, callId: id },
          { signal: abort.signal },
        )) {
          got.push(r.index);
          abort.abort();
        }
      });
      expect(err.code).toBe(Code.Canceled);
      expect(got).toEqual([0]);
      await waitFor("the server to see the cancellation", () => server.cancelled.has(id));

      const unaryId = callId();
      const abortUnary = new AbortController();
      const pending = failure(() => c.unary({ delayMs: 5000, callId: unaryId }, { signal: abortUnary.signal }));
      await waitFor("the unary call to reach the server", () => server.started.has(unaryId));
      abortUnary.abort();
      expect((await pending).code).toBe(Code.Canceled);
      await waitFor("the server to see the unary cancellation", () => server.cancelled.has(unaryId));
    });

    it("breaking out of a response stream cancels the call on the server", async () => {
      const c = clientFor();
      const id = callId();
      for await (const _ of c.serverStream({ responseCount: 5, delayMs: 5000, delayAfter: 1, callId: id })) {
        break;
      }
      await waitFor("the server to see the cancellation", () => server.cancelled.has(id));
    });
  });

  describe("call edges", () => {
    it("an already aborted signal fails the call with CANCELED, unary and streaming", async () => {
      const c = clientFor();
      const signal = AbortSignal.abort();
      expect((await failure(() => c.unary({}, { signal }))).code).toBe(Code.Canceled);
      const err = await failure(async () => {
        for await (const _ of c.serverStream({ responseCount: 1 }, { signal })) {
          // drain
        }
      });
      expect(err.code).toBe(Code.Canceled);
    });

    it("a request stream that throws fails the call with its error", async () => {
      const c = clientFor();
      async function* failing() {
        yield { payload: bytes(3) };
        throw new ConnectError("input broke", Code.DataLoss);
      }
      const err = await failure(() => c.clientStream(failing()));
      expect(err.code).toBe(Code.DataLoss);
      expect(err.rawMessage).toBe("input broke");
    });

    it("a cancelled call ends the request stream: its finally block runs", async () => {
      const c = clientFor();
      let cleaned = false;
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      async function* input() {
        try {
          yield { responseCount: 1 };
          await gate;
          yield { responseCount: 1 };
        } finally {
          cleaned = true;
        }
      }
      const abort = new AbortController();
      const err = await failure(async () => {
        for await (const _ of c.bidi(input(), { signal: abort.signal })) abort.abort();
      });
      expect(err.code).toBe(Code.Canceled);
      release();
      await waitFor("the request generator's finally block", () => cleaned);
    });

    it("timeoutMs <= 0 means no deadline; a huge timeoutMs works", async () => {
      const c = clientFor();
      expect((await c.unary({ delayMs: 50 }, { timeoutMs: 0 })).index).toBe(0);
      expect((await c.unary({ delayMs: 50 }, { timeoutMs: -5 })).index).toBe(0);
      if (client !== "connect-node") {
        expect((await c.unary({}, { timeoutMs: 3_000_000_000 })).index).toBe(0);
      } else {
        // Difference: connect-node hands 3e9 ms to setTimeout, which overflows and fires at once.
        expect((await failure(() => c.unary({}, { timeoutMs: 3_000_000_000 }))).code).toBe(Code.DeadlineExceeded);
      }
    });
  });

  describe("connection events", () => {
    it("server closing mid-stream: a prompt error, no hang", async () => {
      const own = await startConformanceServer(serverKind);
      const c = createClient(ConformanceService, transportFor(own.baseUrl));
      const got: number[] = [];
      const started = Date.now();
      const err = await failure(async () => {
        for await (const r of c.serverStream({ responseCount: 5, delayMs: 5000, delayAfter: 1 })) {
          got.push(r.index);
          void own.kill();
        }
      });
      expect(got).toEqual([0]);
      expect(Date.now() - started).toBeLessThan(4000);
      // On node:http2 both clients report the reset as it comes: the connect-node server's destroyed
      // session resets the stream with CANCEL; grpc-js's forceShutdown closes the session with code 8.
      // On meshlite's HTTP/2 a connection lost under the call is UNAVAILABLE, as gRPC specifies.
      const expected = client === "lean-frames" ? "Unavailable" : serverKind === "connect" ? "Canceled" : "Internal";
      expect(Code[err.code]).toBe(expected);
      await own.kill();
    });

    it("GOAWAY with calls in flight: they complete", async () => {
      const own = await startConformanceServer(serverKind);
      const c = createClient(ConformanceService, transportFor(own.baseUrl));
      const streams = [0, 1, 2].map(() =>
        c.serverStream({ responseCount: 3, delayMs: 300, delayAfter: 1 })[Symbol.asyncIterator](),
      );
      // Every call has its first message: all are in flight on the connection.
      for (const s of streams) expect((await s.next()).value?.index).toBe(0);
      const closed = own.close();
      for (const s of streams) {
        expect((await s.next()).value?.index).toBe(1);
        expect((await s.next()).value?.index).toBe(2);
        expect((await s.next()).done).toBe(true);
      }
      await closed;
    });
  });

  describe("interceptors", () => {
    it("see and change request headers, contextValues, response headers and a signal", async () => {
      const key = createContextKey("none", { description: "test key" });
      const seen: string[] = [];
      const interceptor: Interceptor = (next) => async (req) => {
        req.header.set("x-test-icpt", req.contextValues.get(key));
        expect(req.signal).toBeInstanceOf(AbortSignal);
        seen.push(`${req.stream ? "stream" : "unary"} ${req.method.name} ${new URL(req.url).pathname}`);
        const res = await next(req);
        seen.push(`header ${res.header.get("x-test-icpt")}`);
        return res;
      };
      const c = clientFor({ interceptors: [interceptor] });
      const contextValues = (await import("@connectrpc/connect")).createContextValues().set(key, "from-context");
      await c.unary({}, { contextValues });
      for await (const _ of c.serverStream({ responseCount: 1 }, { contextValues })) {
        // drain
      }
      expect(seen).toEqual([
        "unary Unary /meshlite.conformance.v1.ConformanceService/Unary",
        "header from-context",
        "stream ServerStream /meshlite.conformance.v1.ConformanceService/ServerStream",
        "header from-context",
      ]);
    });
  });

  describe("interceptors changing the call", () => {
    it("wrap request and response messages of a stream", async () => {
      let seenResponses = 0;
      const interceptor: Interceptor = (next) => async (req) => {
        if (!req.stream) return next(req);
        const input = req.message;
        const res = await next({
          ...req,
          message: (async function* () {
            for await (const m of input) yield { ...m, payload: new Uint8Array([9, 9]) };
          })(),
        });
        if (!res.stream) return res;
        const output = res.message;
        return {
          ...res,
          message: (async function* () {
            for await (const m of output) {
              seenResponses++;
              yield m;
            }
          })(),
        };
      };
      const c = clientFor({ interceptors: [interceptor] });
      const r = await c.clientStream(requests([{}, {}, {}]));
      expect(r.requestBytes).toBe(6n);
      expect(seenResponses).toBe(1);
    });

    it("a signal put in the request by an interceptor cancels the call", async () => {
      const abort = new AbortController();
      const interceptor: Interceptor = (next) => (req) => next({ ...req, signal: abort.signal });
      const c = clientFor({ interceptors: [interceptor] });
      const id = callId();
      const pending = failure(() => c.unary({ delayMs: 5000, callId: id }));
      await waitFor("the call to reach the server", () => server.started.has(id));
      abort.abort();
      expect((await pending).code).toBe(Code.Canceled);
    });
  });

  if (serverKind === "connect") {
    it("JSON codec (application/grpc+json)", async () => {
      const c = clientFor({ useBinaryFormat: false });
      expect((await c.unary({ payload: bytes(7) })).payload).toEqual(bytes(7));
      const got: number[] = [];
      for await (const r of c.serverStream({ responseCount: 3 })) got.push(r.index);
      expect(got).toEqual([0, 1, 2]);
    });
  }
});

describe.each(["lean", "lean-frames", "connect-node"] as const)("%s client, malformed responses", (client) => {
  let raw: Awaited<ReturnType<typeof startRawServer>>;
  const closers: Array<() => void> = [];
  let c: ReturnType<typeof createClient<typeof ConformanceService>>;
  beforeAll(async () => {
    raw = await startRawServer();
    c = createClient(ConformanceService, makeTransport(client, { baseUrl: raw.baseUrl }, closers));
  });
  afterAll(async () => {
    for (const close of closers) close();
    await raw.close();
  });

  const cases: [RawMode, Code, RegExp][] = [
    ["truncated", Code.InvalidArgument, /incomplete envelope/],
    ["no-status", Code.Internal, /missing status/],
    ["wrong-content-type", Code.Unknown, /content type/],
    ["http-503", Code.Unavailable, /HTTP 503/],
    ["garbage", Code.Internal, /parse binary/],
    ["two-messages", Code.Unimplemented, /extra output message/],
    ["compressed-no-encoding", Code.Internal, /compress/],
    ["rst", Code.Internal, /INTERNAL_ERROR/],
    ["huge-length", Code.InvalidArgument, /incomplete envelope|promised/],
    ["bad-status", Code.Internal, /invalid grpc-status/],
  ];
  it.each(cases)("%s: unary fails with a clear error", async (mode, code, message) => {
    const err = await failure(() => c.unary({}, { headers: { "x-raw-mode": mode }, timeoutMs: 5000 }));
    expect({ code: Code[err.code], message: err.message }).toMatchObject({ code: Code[code] });
    expect(err.message).toMatch(message);
  });
  it.each(cases.filter(([mode]) => mode !== "two-messages"))(
    "%s: server stream fails with a clear error",
    async (mode, code, message) => {
      const err = await failure(async () => {
        for await (const _ of c.serverStream({}, { headers: { "x-raw-mode": mode }, timeoutMs: 5000 })) {
          // drain
        }
      });
      expect({ code: Code[err.code], message: err.message }).toMatchObject({ code: Code[code] });
      expect(err.message).toMatch(message);
    },
  );
  it("REFUSED_STREAM: UNAVAILABLE with the lean transport (connect-node: INTERNAL)", async () => {
    const err = await failure(() => c.unary({}, { headers: { "x-raw-mode": "refused" }, timeoutMs: 5000 }));
    // Difference: connect-node maps Node's stream error event, not the HTTP/2 code, so a refused
    // (never processed, safe to retry) call looks like an internal error.
    expect(Code[err.code]).toBe(client !== "connect-node" ? "Unavailable" : "Internal");
    expect(err.message).toMatch(/REFUSED_STREAM/);
  });
  it("silent server: the deadline ends the call", async () => {
    const err = await failure(() => c.unary({}, { headers: { "x-raw-mode": "silent" }, timeoutMs: 200 }));
    expect(err.code).toBe(Code.DeadlineExceeded);
  });
});
