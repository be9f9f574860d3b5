import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import {
  type ConformanceRequest,
  ConformanceRequestSchema,
  type ConformanceResponse,
  ConformanceResponseSchema,
  ConformanceService,
  ErrorDetailSchema,
} from "../../gen/meshlite/conformance/v1/conformance_pb.js";

/** A server of ConformanceService with the same behaviour whatever it is built on. */
export interface ConformanceServer {
  readonly kind: "connect" | "grpc-js";
  readonly baseUrl: string;
  /** call_id of every call whose handler started. */
  readonly started: Set<string>;
  /** call_id of every call the server saw cancelled by the client. */
  readonly cancelled: Set<string>;
  /** Graceful stop: GOAWAY, in-flight calls finish. */
  close(): Promise<void>;
  /** Abrupt stop: every connection destroyed at once. */
  kill(): Promise<void>;
}

function payloadFor(req: ConformanceRequest): Uint8Array {
  if (req.responseSize === 0) return req.payload;
  const bytes = new Uint8Array(req.responseSize);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 7; // compressible
  return bytes;
}

function delayFor(req: ConformanceRequest, index: number): number {
  return index >= req.delayAfter ? req.delayMs : 0;
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      reject(new ConnectError("canceled", Code.Canceled));
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

const detailTypeName = ErrorDetailSchema.typeName;

// --- connect-node server --------------------------------------------------------------------

function connectError(req: ConformanceRequest): ConnectError | undefined {
  if (req.errorCode === 0) return undefined;
  const details = req.errorDetails
    ? [{ desc: ErrorDetailSchema, value: { reason: req.errorMessage, index: req.errorCode } }]
    : [];
  return new ConnectError(req.errorMessage, req.errorCode as Code, undefined, details);
}

function echoHeaders(ctx: HandlerContext): void {
  ctx.requestHeader.forEach((value, key) => {
    if (key.startsWith("x-test-")) {
      ctx.responseHeader.append(key, value);
      ctx.responseTrailer.append(`x-trailer-${key.slice(7)}`, value);
    }
  });
  const encoding = ctx.requestHeader.get("grpc-encoding");
  if (encoding !== null) ctx.responseHeader.set("x-seen-encoding", encoding);
}

export async function startConnectConformanceServer(host = "127.0.0.1"): Promise<ConformanceServer> {
  const cancelled = new Set<string>();
  const started = new Set<string>();
  const sessions = new Set<http2.Http2Session>();
  function watchCancel(ctx: HandlerContext, id: string): () => void {
    if (id !== "") started.add(id);
    let finished = false;
    ctx.signal.addEventListener("abort", () => {
      if (!finished && id !== "") cancelled.add(id);
    });
    return () => {
      finished = true;
    };
  }
  const routes = (router: ConnectRouter) =>
    router.service(ConformanceService, {
      async unary(req, ctx) {
        echoHeaders(ctx);
        const done = watchCancel(ctx, req.callId);
        await pause(req.delayMs, ctx.signal);
        done();
        const err = connectError(req);
        if (err) throw err;
        return { payload: payloadFor(req) };
      },
      async *serverStream(req, ctx) {
        echoHeaders(ctx);
        const done = watchCancel(ctx, req.callId);
        for (let index = 0; index < req.responseCount; index++) {
          await pause(delayFor(req, index), ctx.signal);
          yield { index, payload: payloadFor(req) };
        }
        done();
        const err = connectError(req);
        if (err) throw err;
      },
      async clientStream(reqs, ctx) {
        echoHeaders(ctx);
        let count = 0;
        let bytes = 0;
        let last: ConformanceRequest | undefined;
        for await (const req of reqs) {
          count++;
          bytes += req.payload.byteLength;
          last = req;
        }
        const err = last ? connectError(last) : undefined;
        if (err) throw err;
        return {
          requestCount: count,
          requestBytes: BigInt(bytes),
          payload: last ? payloadFor(last) : new Uint8Array(),
        };
      },
      async *bidi(reqs, ctx) {
        echoHeaders(ctx);
        let index = 0;
        let last: ConformanceRequest | undefined;
        let done = () => {};
        for await (const req of reqs) {
          if (last === undefined) done = watchCancel(ctx, req.callId);
          last = req;
          for (let i = 0; i < req.responseCount; i++) {
            await pause(delayFor(req, index), ctx.signal);
            yield { index: index++, payload: payloadFor(req) };
          }
        }
        done();
        const err = last ? connectError(last) : undefined;
        if (err) throw err;
      },
    });
  const server = http2.createServer({}, connectNodeAdapter({ routes }));
  server.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    kind: "connect",
    baseUrl: `http://${host}:${port}`,
    started,
    cancelled,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.close();
      });
      return closing;
    },
    kill() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.destroy();
      });
      return closing;
    },
  };
}

// --- @grpc/grpc-js server ---------------------------------------------------------------------

/** google.rpc.Status, encoded by hand (field 1 code, 2 message, 3 repeated Any). */
function encodeStatus(code: number, message: string, details: { typeUrl: string; value: Uint8Array }[]): Buffer {
  const w = new BinaryWriter();
  w.tag(1, WireType.Varint).int32(code);
  w.tag(2, WireType.LengthDelimited).string(message);
  for (const d of details) {
    w.tag(3, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string(d.typeUrl);
    w.tag(2, WireType.LengthDelimited).bytes(d.value);
    w.join();
  }
  return Buffer.from(w.finish());
}

function grpcError(req: ConformanceRequest, trailer: grpc.Metadata): Partial<grpc.StatusObject> | undefined {
  if (req.errorCode === 0) return undefined;
  const metadata = trailer.clone();
  if (req.errorDetails) {
    const detail = toBinary(
      ErrorDetailSchema,
      create(ErrorDetailSchema, { reason: req.errorMessage, index: req.errorCode }),
    );
    metadata.set(
      "grpc-status-details-bin",
      encodeStatus(req.errorCode, req.errorMessage, [
        { typeUrl: `type.googleapis.com/${detailTypeName}`, value: detail },
      ]),
    );
  }
  return { code: req.errorCode, details: req.errorMessage, metadata };
}

function grpcEchoHeaders(call: SurfaceCall): grpc.Metadata {
  const header = new grpc.Metadata();
  const trailer = new grpc.Metadata();
  for (const key of Object.keys(call.metadata.getMap())) {
    if (!key.startsWith("x-test-")) continue;
    for (const value of call.metadata.get(key)) {
      header.add(key, value);
      trailer.add(`x-trailer-${key.slice(7)}`, value);
    }
  }
  const encoding = call.metadata.get("grpc-encoding")[0];
  if (encoding !== undefined) header.set("x-seen-encoding", String(encoding));
  call.sendMetadata(header);
  return trailer;
}

function method<Req, Res>(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/${ConformanceService.typeName}/${name}`,
    requestStream,
    responseStream,
    requestSerialize: (m: Req) => Buffer.from(toBinary(ConformanceRequestSchema, m as ConformanceRequest)),
    requestDeserialize: (b: Buffer) => fromBinary(ConformanceRequestSchema, b) as Req,
    responseSerialize: (m: Res) => Buffer.from(toBinary(ConformanceResponseSchema, m as ConformanceResponse)),
    responseDeserialize: (b: Buffer) => fromBinary(ConformanceResponseSchema, b) as Res,
  };
}

const grpcDefinition = {
  unary: method<ConformanceRequest, ConformanceResponse>("Unary", false, false),
  serverStream: method<ConformanceRequest, ConformanceResponse>("ServerStream", false, true),
  clientStream: method<ConformanceRequest, ConformanceResponse>("ClientStream", true, false),
  bidi: method<ConformanceRequest, ConformanceResponse>("Bidi", true, true),
} satisfies grpc.ServiceDefinition;

type SurfaceCall =
  | grpc.ServerUnaryCall<ConformanceRequest, ConformanceResponse>
  | grpc.ServerReadableStream<ConformanceRequest, ConformanceResponse>
  | grpc.ServerWritableStream<ConformanceRequest, ConformanceResponse>
  | grpc.ServerDuplexStream<ConformanceRequest, ConformanceResponse>;

const res = (init: MessageInitShape<typeof ConformanceResponseSchema>) => create(ConformanceResponseSchema, init);

export async function startGrpcJsConformanceServer(host = "127.0.0.1"): Promise<ConformanceServer> {
  const cancelled = new Set<string>();
  const started = new Set<string>();
  const server = new grpc.Server({ "grpc.default_compression_algorithm": 2, "grpc.max_receive_message_length": -1 });
  function watchCancel(call: SurfaceCall, id: string) {
    if (id !== "") started.add(id);
    (call as grpc.ServerUnaryCall<ConformanceRequest, ConformanceResponse>).on("cancelled", () => {
      if (id !== "") cancelled.add(id);
    });
  }
  server.addService(grpcDefinition, {
    unary(
      call: grpc.ServerUnaryCall<ConformanceRequest, ConformanceResponse>,
      callback: grpc.sendUnaryData<ConformanceResponse>,
    ) {
      const req = call.request;
      const trailer = grpcEchoHeaders(call);
      watchCancel(call, req.callId);
      void pause(req.delayMs).then(() => {
        const err = grpcError(req, trailer);
        if (err) callback(err, null);
        else callback(null, res({ payload: payloadFor(req) }), trailer);
      });
    },
    async serverStream(call: grpc.ServerWritableStream<ConformanceRequest, ConformanceResponse>) {
      const req = call.request;
      const trailer = grpcEchoHeaders(call);
      watchCancel(call, req.callId);
      for (let index = 0; index < req.responseCount; index++) {
        await pause(delayFor(req, index));
        if (call.cancelled) return;
        call.write(res({ index, payload: payloadFor(req) }));
      }
      const err = grpcError(req, trailer);
      if (err) call.emit("error", err);
      else call.end(trailer);
    },
    clientStream(
      call: grpc.ServerReadableStream<ConformanceRequest, ConformanceResponse>,
      callback: grpc.sendUnaryData<ConformanceResponse>,
    ) {
      const trailer = grpcEchoHeaders(call);
      let count = 0;
      let bytes = 0;
      let last: ConformanceRequest | undefined;
      call.on("data", (req: ConformanceRequest) => {
        count++;
        bytes += req.payload.byteLength;
        last = req;
      });
      call.on("end", () => {
        const err = last ? grpcError(last, trailer) : undefined;
        if (err) callback(err, null);
        else
          callback(
            null,
            res({
              requestCount: count,
              requestBytes: BigInt(bytes),
              payload: last ? payloadFor(last) : new Uint8Array(),
            }),
            trailer,
          );
      });
    },
    bidi(call: grpc.ServerDuplexStream<ConformanceRequest, ConformanceResponse>) {
      const trailer = grpcEchoHeaders(call);
      let index = 0;
      let last: ConformanceRequest | undefined;
      let chain = Promise.resolve();
      call.on("data", (req: ConformanceRequest) => {
        if (last === undefined) watchCancel(call, req.callId);
        last = req;
        chain = chain.then(async () => {
          for (let i = 0; i < req.responseCount; i++) {
            await pause(delayFor(req, index));
            if (call.cancelled) return;
            call.write(res({ index: index++, payload: payloadFor(req) }));
          }
        });
      });
      call.on("end", () => {
        void chain.then(() => {
          if (call.cancelled) return;
          const err = last ? grpcError(last, trailer) : undefined;
          if (err) call.emit("error", err);
          else call.end(trailer);
        });
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  let closing: Promise<void> | undefined;
  return {
    kind: "grpc-js",
    baseUrl: `http://${host}:${port}`,
    started,
    cancelled,
    close() {
      closing ??= new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      return closing;
    },
    kill() {
      closing ??= Promise.resolve().then(() => server.forceShutdown());
      return closing;
    },
  };
}

export type ConformanceServerKind = ConformanceServer["kind"];

export function startConformanceServer(kind: ConformanceServerKind, host?: string): Promise<ConformanceServer> {
  return kind === "connect" ? startConnectConformanceServer(host) : startGrpcJsConformanceServer(host);
}
