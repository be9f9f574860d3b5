import { AsyncLocalStorage } from "node:async_hooks";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import { compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { EmptySchema } from "../../gen/grpc/testing/empty_pb.js";
import {
  type EchoStatus,
  type Payload,
  PayloadSchema,
  type SimpleRequest,
  type SimpleResponse,
  SimpleResponseSchema,
  type StreamingInputCallRequest,
  type StreamingInputCallResponse,
  StreamingInputCallResponseSchema,
  type StreamingOutputCallRequest,
  type StreamingOutputCallResponse,
  StreamingOutputCallResponseSchema,
} from "../../gen/grpc/testing/messages_pb.js";
import { TestService } from "../../gen/grpc/testing/test_pb.js";

// The interop server's behaviour, from grpc's doc/interop-test-descriptions.md
// ("Server"): payloads of zeros of the asked size, the status asked for in
// response_status, and these two request headers echoed back, the first in
// the response headers, the second in the trailers.
export const echoInitial = "x-grpc-test-echo-initial";
export const echoTrailingBin = "x-grpc-test-echo-trailing-bin";

/** A TestService server on loopback. */
export interface InteropServer {
  readonly address: string;
  /** Calls that reached the server, by method name (e.g. "FullDuplexCall"). */
  readonly calls: Map<string, number>;
  /** Request messages the server received, all methods together. */
  received(): number;
  /** The next `n` calls fail with UNAVAILABLE before any response message (trailers-only). */
  failNext(n: number): void;
  close(): Promise<void>;
}

function zeros(size: number): Payload {
  return create(PayloadSchema, { body: new Uint8Array(size) });
}

function statusOf(status: EchoStatus | undefined): { code: number; message: string } | undefined {
  return status !== undefined && status.code !== 0 ? { code: status.code, message: status.message } : undefined;
}

function sleepUs(us: number): Promise<void> {
  return us > 0 ? new Promise((resolve) => setTimeout(resolve, us / 1000)) : Promise.resolve();
}

/** Shared bookkeeping of both servers. */
function createRecorder() {
  const calls = new Map<string, number>();
  let received = 0;
  let failing = 0;
  return {
    calls,
    received: () => received,
    failNext(n: number) {
      failing = n;
    },
    /** Counts a call; true when it must fail (failNext). */
    call(method: string): boolean {
      calls.set(method, (calls.get(method) ?? 0) + 1);
      if (failing === 0) return false;
      failing--;
      return true;
    },
    message() {
      received++;
    },
  };
}

// --- @grpc/grpc-js --------------------------------------------------------

function grpcMethod(
  name: string,
  input: DescMessage,
  output: DescMessage,
  requestStream: boolean,
  responseStream: boolean,
) {
  return {
    path: `/${TestService.typeName}/${name}`,
    requestStream,
    responseStream,
    requestSerialize: (m: MessageShape<DescMessage>) => Buffer.from(toBinary(input, m)),
    requestDeserialize: (b: Buffer) => fromBinary(input, b),
    responseSerialize: (m: MessageShape<DescMessage>) => Buffer.from(toBinary(output, m)),
    responseDeserialize: (b: Buffer) => fromBinary(output, b),
  };
}

/** The response headers and trailers that echo the request's test metadata. */
function grpcEchoMetadata(call: { metadata: grpc.Metadata; sendMetadata(m: grpc.Metadata): void }): grpc.Metadata {
  const initial = new grpc.Metadata();
  for (const v of call.metadata.get(echoInitial)) initial.add(echoInitial, v);
  call.sendMetadata(initial);
  const trailer = new grpc.Metadata();
  for (const v of call.metadata.get(echoTrailingBin)) trailer.add(echoTrailingBin, v);
  return trailer;
}

function grpcStatus(status: { code: number; message: string }, metadata: grpc.Metadata): Partial<grpc.StatusObject> {
  return { code: status.code, details: status.message, metadata };
}

const unavailable = { code: Code.Unavailable, message: "failing as asked (failNext)" };

/** A @grpc/grpc-js server implementing grpc.testing.TestService (UnimplementedCall left out, as the descriptions ask). */
export async function startGrpcJsInteropServer(host: string): Promise<InteropServer> {
  const rec = createRecorder();
  const server = new grpc.Server();
  const m = TestService.method;
  const definition = {
    EmptyCall: grpcMethod(m.emptyCall.name, EmptySchema, EmptySchema, false, false),
    UnaryCall: grpcMethod(m.unaryCall.name, m.unaryCall.input, m.unaryCall.output, false, false),
    StreamingOutputCall: grpcMethod(
      m.streamingOutputCall.name,
      m.streamingOutputCall.input,
      m.streamingOutputCall.output,
      false,
      true,
    ),
    StreamingInputCall: grpcMethod(
      m.streamingInputCall.name,
      m.streamingInputCall.input,
      m.streamingInputCall.output,
      true,
      false,
    ),
    FullDuplexCall: grpcMethod(m.fullDuplexCall.name, m.fullDuplexCall.input, m.fullDuplexCall.output, true, true),
  };
  type Unary<I, O> = grpc.handleUnaryCall<I, O>;
  const handlers = {
    EmptyCall: ((call, callback) => {
      rec.message();
      const trailer = grpcEchoMetadata(call);
      if (rec.call("EmptyCall")) return callback(grpcStatus(unavailable, trailer));
      callback(null, create(EmptySchema), trailer);
    }) as Unary<unknown, unknown>,
    UnaryCall: ((call, callback) => {
      rec.message();
      const trailer = grpcEchoMetadata(call);
      if (rec.call("UnaryCall")) return callback(grpcStatus(unavailable, trailer));
      const status = statusOf(call.request.responseStatus);
      if (status) return callback(grpcStatus(status, trailer));
      callback(null, create(SimpleResponseSchema, { payload: zeros(call.request.responseSize) }), trailer);
    }) as Unary<SimpleRequest, SimpleResponse>,
    StreamingOutputCall: (async (call) => {
      rec.message();
      const trailer = grpcEchoMetadata(call);
      if (rec.call("StreamingOutputCall")) return call.emit("error", grpcStatus(unavailable, trailer));
      for (const p of call.request.responseParameters) {
        await sleepUs(p.intervalUs);
        if (call.cancelled) return;
        call.write(create(StreamingOutputCallResponseSchema, { payload: zeros(p.size) }));
      }
      const status = statusOf(call.request.responseStatus);
      if (status) call.emit("error", grpcStatus(status, trailer));
      else call.end(trailer);
    }) as grpc.handleServerStreamingCall<StreamingOutputCallRequest, StreamingOutputCallResponse>,
    StreamingInputCall: ((call, callback) => {
      const trailer = grpcEchoMetadata(call);
      if (rec.call("StreamingInputCall")) return callback(grpcStatus(unavailable, trailer));
      let size = 0;
      call.on("data", (req: StreamingInputCallRequest) => {
        rec.message();
        size += req.payload?.body.byteLength ?? 0;
      });
      call.on("end", () =>
        callback(null, create(StreamingInputCallResponseSchema, { aggregatedPayloadSize: size }), trailer),
      );
      call.on("error", () => {});
    }) as grpc.handleClientStreamingCall<StreamingInputCallRequest, StreamingInputCallResponse>,
    FullDuplexCall: ((call) => {
      const trailer = grpcEchoMetadata(call);
      if (rec.call("FullDuplexCall")) return call.emit("error", grpcStatus(unavailable, trailer));
      let ended = false;
      // Requests are answered one after the other, in order.
      let chain = Promise.resolve();
      call.on("data", (req: StreamingOutputCallRequest) => {
        rec.message();
        chain = chain.then(async () => {
          if (ended) return;
          const status = statusOf(req.responseStatus);
          if (status) {
            ended = true;
            call.emit("error", grpcStatus(status, trailer));
            return;
          }
          for (const p of req.responseParameters) {
            await sleepUs(p.intervalUs);
            if (call.cancelled || ended) return;
            call.write(create(StreamingOutputCallResponseSchema, { payload: zeros(p.size) }));
          }
        });
      });
      call.on("end", () => {
        void chain.then(() => {
          if (ended) return;
          ended = true;
          call.end(trailer);
        });
      });
      call.on("error", () => {});
    }) as grpc.handleBidiStreamingCall<StreamingOutputCallRequest, StreamingOutputCallResponse>,
  };
  server.addService(definition as unknown as grpc.ServiceDefinition, handlers as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (error, p) =>
      error ? reject(error) : resolve(p),
    ),
  );
  return {
    address: `${host}:${port}`,
    calls: rec.calls,
    received: rec.received,
    failNext: rec.failNext,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 2000).unref();
      }),
  };
}

// --- connect-node ----------------------------------------------------------

/** What a connect-node interop server saw of one call's compression. */
interface CompressionRecord {
  /** Order of the calls over all servers of the process. */
  seq: number;
  requestCompressed: boolean;
  responseCompressed: boolean;
}
let callSeq = 0;

/** A TestService server that also speaks Connect and gRPC-web, and reports per call whether messages were compressed. */
export interface ConnectInteropServer extends InteropServer {
  /** Compression of the last UnaryCall (as its messages went over the wire). */
  lastUnary(): CompressionRecord | undefined;
}

function connectEcho(ctx: HandlerContext): void {
  const initial = ctx.requestHeader.get(echoInitial);
  if (initial !== null) ctx.responseHeader.set(echoInitial, initial);
  const trailing = ctx.requestHeader.get(echoTrailingBin);
  if (trailing !== null) ctx.responseTrailer.set(echoTrailingBin, trailing);
}

function connectError(status: { code: number; message: string }): ConnectError {
  return new ConnectError(status.message, status.code as Code);
}

/**
 * A connect-node server implementing grpc.testing.TestService for all three
 * protocols. It serves the compression cases: it tells from the envelope flag
 * whether a request message was compressed (its gzip is only asked to
 * decompress flagged messages) and records whether it compressed the response.
 */
export async function startConnectInteropServer(host: string): Promise<ConnectInteropServer> {
  const rec = createRecorder();
  const current = new AsyncLocalStorage<CompressionRecord>();
  let lastUnary: CompressionRecord | undefined;
  const gzip: Compression = {
    name: compressionGzip.name,
    compress(bytes) {
      const r = current.getStore();
      if (r) r.responseCompressed = true;
      return compressionGzip.compress(bytes);
    },
    decompress(bytes, readMaxBytes) {
      const r = current.getStore();
      if (r) r.requestCompressed = true;
      return compressionGzip.decompress(bytes, readMaxBytes);
    },
  };
  const adapter = connectNodeAdapter({
    acceptCompression: [gzip],
    routes(router) {
      router.service(TestService, {
        emptyCall(_req, ctx) {
          rec.message();
          connectEcho(ctx);
          if (rec.call("EmptyCall")) throw connectError(unavailable);
          return {};
        },
        unaryCall(req, ctx) {
          rec.message();
          connectEcho(ctx);
          const r = current.getStore();
          lastUnary = r;
          if (rec.call("UnaryCall")) throw connectError(unavailable);
          if (req.expectCompressed?.value && !r?.requestCompressed) {
            throw new ConnectError("expected a compressed request message", Code.InvalidArgument);
          }
          const status = statusOf(req.responseStatus);
          if (status) throw connectError(status);
          return { payload: zeros(req.responseSize) };
        },
        async *streamingOutputCall(req, ctx) {
          rec.message();
          connectEcho(ctx);
          if (rec.call("StreamingOutputCall")) throw connectError(unavailable);
          for (const p of req.responseParameters) {
            await sleepUs(p.intervalUs);
            yield { payload: zeros(p.size) };
          }
          const status = statusOf(req.responseStatus);
          if (status) throw connectError(status);
        },
        async streamingInputCall(requests, ctx) {
          connectEcho(ctx);
          if (rec.call("StreamingInputCall")) throw connectError(unavailable);
          let size = 0;
          for await (const req of requests) {
            rec.message();
            size += req.payload?.body.byteLength ?? 0;
          }
          return { aggregatedPayloadSize: size };
        },
        async *fullDuplexCall(requests, ctx) {
          connectEcho(ctx);
          if (rec.call("FullDuplexCall")) throw connectError(unavailable);
          for await (const req of requests) {
            rec.message();
            const status = statusOf(req.responseStatus);
            if (status) throw connectError(status);
            for (const p of req.responseParameters) {
              await sleepUs(p.intervalUs);
              yield { payload: zeros(p.size) };
            }
          }
        },
      });
    },
  });
  const server = http2.createServer((req, res) => {
    current.run({ seq: ++callSeq, requestCompressed: false, responseCompressed: false }, () => adapter(req, res));
  });
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `${host}:${port}`,
    calls: rec.calls,
    received: rec.received,
    failNext: rec.failNext,
    lastUnary: () => lastUnary,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.close();
      }),
  };
}
