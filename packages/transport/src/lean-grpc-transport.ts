import type * as http2 from "node:http2";
import type {
  BinaryReadOptions,
  BinaryWriteOptions,
  DescMessage,
  DescMethodStreaming,
  DescMethodUnary,
  JsonReadOptions,
  JsonWriteOptions,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import {
  type Compression,
  createMethodSerializationLookup,
  type Serialization,
  validateReadWriteMaxBytes,
} from "@connectrpc/connect/protocol";
import { contentTypeRegExp } from "@connectrpc/connect/protocol-grpc";
import {
  compressionBrotli,
  compressionGzip,
  type GrpcTransportOptions,
  Http2SessionManager,
  type Http2SessionOptions,
} from "@connectrpc/connect-node";
import { LeanEnvelopeReader, type LeanFrame, leanEncodeEnvelope, leanFlagCompressed } from "./lean-envelope.js";
import { type LeanNodeHeaders, leanAppendHeadersInit, leanNodeToWebHeaders } from "./lean-metadata.js";
import {
  leanCodeFromHttpStatus,
  leanEncodeTimeout,
  leanErrorFromNode,
  leanErrorFromRstCode,
  leanErrorNoResponse,
  leanIsOk,
  leanRstCancel,
  leanStatusError,
} from "./lean-status.js";

/** connect-node's HTTP/2 session seam: `{ authority, request(), notifyResponseByteRead() }`. */
export type LeanSessionManager = NonNullable<GrpcTransportOptions["sessionManager"]>;

/** Options of createLeanGrpcTransport; the fields mirror connect-node's GrpcTransportOptions. */
export type LeanGrpcTransportOptions = {
  /** Base URL of every call, e.g. `http://10.0.0.7:50051`; its origin must equal the session manager's authority. Required. */
  baseUrl: string;
  /** The HTTP/2 connection to use. Default: a new connect-node Http2SessionManager for baseUrl. */
  sessionManager?: LeanSessionManager;
  /** Options for the default session manager's http2.connect(). Default: none. Ignored with sessionManager. */
  nodeOptions?: http2.ClientSessionOptions | http2.SecureClientSessionOptions;
  /** Interceptors, outermost first, with Connect's semantics. Default: none. */
  interceptors?: Interceptor[];
  /** Binary protobuf (application/grpc+proto) when true, JSON (application/grpc+json) when false. Default true. */
  useBinaryFormat?: boolean;
  /** Options for the JSON codec. Default: Connect's (unknown fields ignored). */
  jsonOptions?: Partial<JsonReadOptions & JsonWriteOptions>;
  /** Options for the binary codec. Default: protobuf-es defaults. */
  binaryOptions?: Partial<BinaryReadOptions & BinaryWriteOptions>;
  /** Compression for request messages of at least compressMinBytes. Default: none. */
  sendCompression?: Compression;
  /** Compressions accepted for responses, advertised in grpc-accept-encoding. Default: gzip and brotli. */
  acceptCompression?: Compression[];
  /** Smallest request message that is compressed. Default 1024 bytes. */
  compressMinBytes?: number;
  /** Largest response message accepted (before and after decompression). Default 0xffffffff. */
  readMaxBytes?: number;
  /** Largest request message sent. Default 0xffffffff. */
  writeMaxBytes?: number;
  /** Deadline of calls that give no timeoutMs. Default: none. */
  defaultTimeoutMs?: number;
} & Http2SessionOptions;

// gRPC's user-agent form is grpc-<language>-<implementation>/<version>.
const userAgent = "grpc-node-meshlite-lean/0.1.0";

/** Everything about the endpoint that is computed once per transport. */
interface LeanEndpoint {
  readonly sm: LeanSessionManager;
  readonly baseUrl: string;
  readonly basePath: string;
  readonly useBinaryFormat: boolean;
  readonly sendCompression: Compression | null;
  readonly acceptCompression: Compression[];
  readonly compressMinBytes: number;
  readonly readMaxBytes: number;
  readonly writeMaxBytes: number;
  readonly interceptors: Interceptor[];
  /** Request header fields of a call with no metadata and no deadline. Frozen: shared by calls. */
  readonly baseHeaders: Readonly<LeanNodeHeaders>;
  readonly jsonOptions: LeanGrpcTransportOptions["jsonOptions"];
  readonly binaryOptions: LeanGrpcTransportOptions["binaryOptions"];
}

/** Everything about a method that is computed once per method and transport. */
interface LeanMethod {
  readonly path: string;
  readonly url: string;
  readonly inputSchema: DescMessage;
  readonly input: Serialization<MessageShape<DescMessage>>;
  readonly output: Serialization<MessageShape<DescMessage>>;
}

type AnyMethod = DescMethodUnary | DescMethodStreaming;

// node:http2 stream events are routed to the call through this property, with module-level
// listeners: no closures are allocated per call.
const kCall = Symbol("meshlite.leanCall");
type CallStream = http2.ClientHttp2Stream & { [kCall]?: LeanCall };

function onStreamResponse(this: CallStream, headers: http2.IncomingHttpHeaders) {
  this[kCall]?.onResponse(headers);
}
function onStreamData(this: CallStream, chunk: Buffer) {
  this[kCall]?.onData(chunk);
}
function onStreamTrailers(this: CallStream, trailers: http2.IncomingHttpHeaders) {
  const call = this[kCall];
  if (call) call.trailers = trailers;
}
function onStreamError(this: CallStream, err: Error) {
  this[kCall]?.onStreamError(this, err);
}
function onStreamClose(this: CallStream) {
  this[kCall]?.onClose(this);
}
function onDeadline(call: LeanCall) {
  call.fail(new ConnectError("the operation timed out", Code.DeadlineExceeded));
}
function noop() {}

/**
 * State shared by unary and streaming calls: the HTTP/2 stream, the deadline timer, the caller's
 * signal, and the lazily created signal handed to interceptors.
 */
abstract class LeanCall {
  stream: CallStream | undefined = undefined;
  headers: http2.IncomingHttpHeaders | undefined = undefined;
  trailers: http2.IncomingHttpHeaders | undefined = undefined;
  compression: Compression | null = null;
  /** Set once open() was called. */
  started = false;
  /** Set once the call is over on the wire (success or failure). */
  done = false;
  /** Set when the call failed; the error every reader gets. */
  error: ConnectError | undefined = undefined;
  readonly reader: LeanEnvelopeReader;
  private timer: ReturnType<typeof setTimeout> | undefined = undefined;
  private userSignal: AbortSignal | undefined;
  private controller: AbortController | undefined = undefined;
  private extraSignal: AbortSignal | undefined = undefined;

  constructor(
    readonly ep: LeanEndpoint,
    readonly info: LeanMethod,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ) {
    this.reader = new LeanEnvelopeReader(ep.readMaxBytes, this);
    this.userSignal = signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        // Subclass fields are not initialized yet: only record the outcome; start() reports it.
        this.error = ConnectError.from(signal.reason, Code.Canceled);
        this.done = true;
        return;
      }
      signal.addEventListener("abort", this);
    }
    // setTimeout fires at once for delays past 2^31-1 ms: such a deadline is as good as none.
    if (timeoutMs !== undefined && timeoutMs <= 0x7fffffff) this.timer = setTimeout(onDeadline, timeoutMs, this);
  }

  /** The signal of Connect's request objects: created only when someone reads it. */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.done) this.controller.abort(this.error);
    }
    return this.controller.signal;
  }

  /** Also follow a signal an interceptor put in the request. */
  linkSignal(signal: AbortSignal): void {
    if (signal === this.controller?.signal || signal === this.userSignal) return;
    if (signal.aborted) {
      this.fail(ConnectError.from(signal.reason, Code.Canceled));
      return;
    }
    this.extraSignal = signal;
    signal.addEventListener("abort", this);
  }

  /** EventListener of the caller's AbortSignal. */
  handleEvent(event: Event): void {
    this.fail(ConnectError.from((event.target as AbortSignal).reason, Code.Canceled));
  }

  abstract onFrame(flags: number, data: Uint8Array): void;
  abstract onResponse(headers: http2.IncomingHttpHeaders): void;
  protected abstract onEnd(): void;
  protected abstract onFail(err: ConnectError): void;

  /** Opens the HTTP/2 stream; `body`, when given, is written with the end of the request. */
  open(headers: Readonly<LeanNodeHeaders>, body: Buffer | undefined): void {
    this.started = true;
    if (this.done) return;
    this.ep.sm.request("POST", this.info.path, headers as LeanNodeHeaders, {}).then(
      (stream) => this.attach(stream as CallStream, body),
      (reason) => this.fail(leanErrorFromNode(reason)),
    );
  }

  private attach(stream: CallStream, body: Buffer | undefined): void {
    if (this.done) {
      // Failed (deadline, cancel) while the stream was being opened.
      stream.on("error", noop);
      stream.close(leanRstCancel);
      return;
    }
    this.stream = stream;
    stream[kCall] = this;
    stream.on("response", onStreamResponse);
    stream.on("data", onStreamData);
    stream.on("trailers", onStreamTrailers);
    stream.on("error", onStreamError);
    stream.on("close", onStreamClose);
    if (body !== undefined) stream.end(body);
    else this.onAttached(stream);
  }

  protected onAttached(_stream: CallStream): void {}

  onData(chunk: Buffer): void {
    if (this.done) return;
    this.ep.sm.notifyResponseByteRead(this.stream!);
    const err = this.reader.push(chunk);
    if (err) this.fail(err);
  }

  onStreamError(stream: CallStream, err: Error): void {
    if (this.done) return;
    const code = (err as { code?: unknown }).code;
    // A write racing the server's end of the call: the response decides the outcome.
    if (code === "ERR_STREAM_WRITE_AFTER_END" && stream.writableEnded) return;
    // Node reports a reset by the peer as ERR_HTTP2_STREAM_ERROR; map it by its HTTP/2 code.
    const fromRst = code === "ERR_HTTP2_STREAM_ERROR" ? leanErrorFromRstCode(stream.rstCode) : undefined;
    // Keep the Node error as the cause: the channel reads marks (not sent, connection lost) from it.
    if (fromRst) fromRst.cause = err;
    this.fail(fromRst ?? leanErrorFromNode(err));
  }

  onClose(stream: CallStream): void {
    if (this.done) return;
    const rstErr = leanErrorFromRstCode(stream.rstCode);
    if (rstErr) {
      this.fail(rstErr);
      return;
    }
    if (this.headers === undefined) {
      this.fail(leanErrorNoResponse(stream.rstCode ?? 0));
      return;
    }
    const incomplete = this.reader.end();
    if (incomplete) {
      this.fail(incomplete);
      return;
    }
    this.onEnd();
  }

  /** Checks :status, content-type and grpc-encoding of the response headers. */
  protected checkHeaders(headers: http2.IncomingHttpHeaders): ConnectError | undefined {
    const status = headers[":status"] as number | undefined;
    if (status !== 200) {
      return new ConnectError(`HTTP ${status}`, leanCodeFromHttpStatus(status ?? 0), leanNodeToWebHeaders(headers));
    }
    const contentType = headers["content-type"];
    if (contentType === undefined || !contentTypeRegExp.test(contentType)) {
      return new ConnectError(
        `unsupported content type ${contentType === undefined ? "(none)" : `"${contentType}"`} in response: expected application/grpc, application/grpc+proto or application/grpc+json`,
        Code.Unknown,
      );
    }
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") {
      const found = this.ep.acceptCompression.find((c) => c.name === encoding);
      if (found === undefined) {
        return new ConnectError(
          `unsupported response encoding "${encoding}"`,
          Code.Internal,
          leanNodeToWebHeaders(headers),
        );
      }
      this.compression = found;
    }
    return undefined;
  }

  /** Decompresses a frame if flagged, then parses it with the method's output codec. */
  protected decode(flags: number, data: Uint8Array): MessageShape<DescMessage> | Promise<MessageShape<DescMessage>> {
    if ((flags & leanFlagCompressed) === 0) return this.info.output.parse(data);
    const compression = this.compression;
    if (compression === null) {
      throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
    }
    return compression.decompress(data, this.ep.readMaxBytes).then((bytes) => this.info.output.parse(bytes));
  }

  /** The error of the final status, with header and trailer fields as metadata (Connect's rules). */
  protected trailerError(): ConnectError | undefined {
    const trailers = this.trailers;
    if (trailers !== undefined && leanIsOk(trailers)) return undefined;
    const err = trailers === undefined ? undefined : leanStatusError(trailers);
    if (err) {
      leanNodeToWebHeaders(this.headers).forEach((value, key) => {
        err.metadata.append(key, value);
      });
      return err;
    }
    if (trailers?.["grpc-status"] === undefined && this.headers?.["grpc-status"] === undefined) {
      return new ConnectError("protocol error: missing status", Code.Internal);
    }
    return undefined;
  }

  /** Stops the timer and the signal listeners; the call is over on the wire. */
  protected settle(): void {
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.userSignal?.removeEventListener("abort", this);
    this.extraSignal?.removeEventListener("abort", this);
  }

  /** Aborts the signal given to interceptors (as Connect does when a call ends, with or without error). */
  protected abortSignal(reason?: ConnectError): void {
    if (this.controller !== undefined && !this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** Fails the call: resets the stream with CANCEL if it is still open. */
  fail(err: ConnectError): void {
    if (this.done) return;
    this.error = err;
    this.settle();
    const stream = this.stream;
    if (stream !== undefined && !stream.closed) {
      stream.close(leanRstCancel);
      // Node keeps a stream closed with unread data until it is read: let it go now.
      stream.destroy();
    }
    this.onFail(err);
  }
}

interface UnaryResult {
  message: MessageShape<DescMessage>;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | undefined;
}

/** A unary call: one framed request written with the end of stream, the response collected from chunks. */
class LeanUnaryCall extends LeanCall {
  private frame: LeanFrame | undefined = undefined;
  resolve: (result: UnaryResult) => void = noop;
  reject: (err: ConnectError) => void = noop;

  onFrame(flags: number, data: Uint8Array): void {
    if (this.frame !== undefined) {
      this.fail(new ConnectError("protocol error: received extra output message for unary method", Code.Unimplemented));
      return;
    }
    this.frame = { flags, data };
  }

  onResponse(headers: http2.IncomingHttpHeaders): void {
    this.headers = headers;
    const err = this.checkHeaders(headers);
    if (err) this.fail(err);
  }

  protected onEnd(): void {
    const frame = this.frame;
    if (frame === undefined) {
      this.complete(undefined);
      return;
    }
    let message: MessageShape<DescMessage> | Promise<MessageShape<DescMessage>>;
    try {
      message = this.decode(frame.flags, frame.data);
    } catch (e) {
      this.fail(ConnectError.from(e, Code.Internal));
      return;
    }
    if (message instanceof Promise) {
      message.then(
        (m) => this.complete(m),
        (e) => this.fail(ConnectError.from(e, Code.Internal)),
      );
    } else {
      this.complete(message);
    }
  }

  private complete(message: MessageShape<DescMessage> | undefined): void {
    if (this.done) return;
    const headers = this.headers!;
    const trailerErr = this.trailerError();
    if (trailerErr) {
      this.fail(trailerErr);
      return;
    }
    // A trailers-only response carries its status in the headers.
    const headerErr = this.trailers === undefined ? leanStatusError(headers) : undefined;
    if (message === undefined) {
      this.fail(
        headerErr ??
          new ConnectError(
            "protocol error: missing output message for unary method",
            this.trailers?.["grpc-status"] !== undefined ? Code.Unimplemented : Code.Unknown,
          ),
      );
      return;
    }
    if (headerErr) {
      this.fail(
        new ConnectError("protocol error: received output message for unary method with error status", Code.Unknown),
      );
      return;
    }
    this.settle();
    this.abortSignal();
    this.resolve({ message, headers, trailers: this.trailers });
  }

  protected onFail(err: ConnectError): void {
    this.abortSignal(err);
    this.reject(err);
  }
}

// Response messages buffered before the stream is paused, and the level it resumes at.
const streamHighWater = 32;
const streamLowWater = 8;

/** A streaming call: request messages written as the input yields them, responses queued for the reader. */
class LeanStreamCall extends LeanCall {
  private queue: (LeanFrame | undefined)[] = [];
  private head = 0;
  private paused = false;
  /** The stream ended and its final status was read: endError is that status's error, if any. */
  private ended = false;
  private endError: ConnectError | undefined = undefined;
  private waiter: { resolve(r: IteratorResult<unknown>): void; reject(e: unknown): void } | undefined = undefined;
  private finished = false;
  private inputIt: AsyncIterator<unknown> | undefined = undefined;
  private inputDone = false;
  resolveResponse: (headers: http2.IncomingHttpHeaders) => void = noop;
  rejectResponse: (err: ConnectError) => void = noop;

  constructor(
    ep: LeanEndpoint,
    info: LeanMethod,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
    private input: AsyncIterable<unknown>,
  ) {
    super(ep, info, signal, timeoutMs);
  }

  /** An interceptor handed next() other request messages. */
  replaceInput(input: AsyncIterable<unknown>): void {
    this.input = input;
  }

  onFrame(flags: number, data: Uint8Array): void {
    this.queue.push({ flags, data });
    if (!this.paused && this.queue.length - this.head >= streamHighWater) {
      this.paused = true;
      this.stream?.pause();
    }
    this.wake();
  }

  onResponse(headers: http2.IncomingHttpHeaders): void {
    this.headers = headers;
    const err = this.checkHeaders(headers) ?? leanStatusError(headers);
    if (err) {
      this.fail(err);
      return;
    }
    this.resolveResponse(headers);
  }

  protected override onAttached(stream: CallStream): void {
    void this.pump(stream);
  }

  /** Writes the request messages, honouring the stream's backpressure. */
  private async pump(stream: CallStream): Promise<void> {
    const it = this.input[Symbol.asyncIterator]();
    this.inputIt = it;
    const { ep, info } = this;
    try {
      for (;;) {
        const r = await it.next();
        if (this.done || stream.destroyed) return;
        if (r.done === true) break;
        const bytes = info.input.serialize(create(info.inputSchema, r.value as MessageShape<DescMessage>));
        let frame: Buffer;
        if (ep.sendCompression !== null && bytes.byteLength >= ep.compressMinBytes) {
          frame = leanEncodeEnvelope(leanFlagCompressed, await ep.sendCompression.compress(bytes));
          if (this.done || stream.destroyed) return;
        } else {
          frame = leanEncodeEnvelope(0, bytes);
        }
        if (!stream.write(frame)) {
          await new Promise<void>((resolve) => {
            const go = () => {
              stream.off("drain", go);
              stream.off("close", go);
              resolve();
            };
            stream.on("drain", go);
            stream.on("close", go);
          });
        }
      }
      this.inputDone = true;
      if (!stream.destroyed && !stream.writableEnded) stream.end();
    } catch (e) {
      this.inputDone = true;
      this.fail(ConnectError.from(e, Code.Internal));
    }
  }

  protected onEnd(): void {
    // A trailers-only response had its status checked with the headers.
    this.endError =
      this.trailers === undefined && this.headers?.["grpc-status"] !== undefined ? undefined : this.trailerError();
    this.ended = true;
    this.settle();
    this.stopInput();
    this.wake();
  }

  protected onFail(err: ConnectError): void {
    this.abortInput(err);
    this.rejectResponse(err);
    this.wake();
  }

  /** As Connect does when a call fails: the request messages' iterator gets the error, then return(). */
  abortInput(err: ConnectError): void {
    if (this.inputDone) return;
    this.inputDone = true;
    const it = this.inputIt ?? this.input[Symbol.asyncIterator]();
    it.throw?.(err).catch(noop);
    it.return?.().catch(noop);
  }

  private stopInput(): void {
    if (!this.inputDone && this.inputIt !== undefined) {
      this.inputDone = true;
      this.inputIt.return?.().catch(noop);
    }
  }

  private finish(err?: ConnectError): void {
    if (this.finished) return;
    this.finished = true;
    this.abortSignal(err);
  }

  /** The next read's result if one is ready now. */
  private take(): Promise<IteratorResult<unknown>> | undefined {
    if (this.error !== undefined) {
      this.finish(this.error);
      return Promise.reject(this.error);
    }
    if (this.head < this.queue.length) {
      const frame = this.queue[this.head]!;
      this.queue[this.head++] = undefined;
      if (this.head === this.queue.length) {
        this.queue.length = 0;
        this.head = 0;
      }
      if (this.paused && this.queue.length - this.head <= streamLowWater) {
        this.paused = false;
        this.stream?.resume();
      }
      try {
        const message = this.decode(frame.flags, frame.data);
        if (message instanceof Promise) {
          return message.then(
            (value) => ({ done: false, value }),
            (e) => {
              const err = ConnectError.from(e, Code.Internal);
              this.fail(err);
              this.finish(err);
              throw err;
            },
          );
        }
        return Promise.resolve({ done: false, value: message });
      } catch (e) {
        const err = ConnectError.from(e, Code.Internal);
        this.fail(err);
        this.finish(err);
        return Promise.reject(err);
      }
    }
    if (this.ended) {
      const err = this.endError;
      this.finish(err);
      return err ? Promise.reject(err) : Promise.resolve({ done: true, value: undefined });
    }
    return undefined;
  }

  private wake(): void {
    const waiter = this.waiter;
    if (waiter === undefined) return;
    const result = this.take();
    if (result === undefined) return;
    this.waiter = undefined;
    result.then(waiter.resolve, waiter.reject);
  }

  /** The response messages, as Connect's StreamResponse.message. */
  messages(): AsyncIterable<MessageShape<DescMessage>> {
    const iterator: AsyncIterator<MessageShape<DescMessage>> = {
      next: () => {
        const result = this.take();
        if (result !== undefined) return result as Promise<IteratorResult<MessageShape<DescMessage>>>;
        return new Promise((resolve, reject) => {
          this.waiter = { resolve: resolve as (r: IteratorResult<unknown>) => void, reject };
        });
      },
      return: (value?: unknown) => {
        // The reader stopped early: cancel the call, quietly.
        if (!this.done) this.fail(new ConnectError("the response stream was closed by the reader", Code.Canceled));
        this.finish();
        return Promise.resolve({ done: true, value: value as MessageShape<DescMessage> });
      },
    };
    return { [Symbol.asyncIterator]: () => iterator };
  }
}

function composeInterceptors<T>(next: T, interceptors: Interceptor[]): T {
  let fn = next as unknown as Parameters<Interceptor>[0];
  for (let i = interceptors.length - 1; i >= 0; i--) fn = interceptors[i]!(fn);
  return fn as unknown as T;
}

/**
 * A gRPC-protocol Connect Transport written straight on node:http2, for a low CPU cost per call:
 * no async-iterable pipes, no AbortController unless the signal is read, no Headers unless asked for.
 */
export function createLeanGrpcTransport(options: LeanGrpcTransportOptions): Transport {
  let url: URL;
  try {
    url = new URL(options.baseUrl);
  } catch {
    throw new Error(
      `createLeanGrpcTransport: baseUrl ${JSON.stringify(options.baseUrl)} is not a URL; expected e.g. "http://10.0.0.7:50051"`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`createLeanGrpcTransport: baseUrl ${options.baseUrl} must use http: or https:`);
  }
  const sm =
    options.sessionManager ??
    new Http2SessionManager(
      url,
      {
        pingIntervalMs: options.pingIntervalMs,
        pingIdleConnection: options.pingIdleConnection,
        pingTimeoutMs: options.pingTimeoutMs,
        idleConnectionTimeoutMs: options.idleConnectionTimeoutMs,
        connectTimeoutMs: options.connectTimeoutMs,
      },
      options.nodeOptions,
    );
  if (sm.authority !== url.origin) {
    throw new Error(
      `createLeanGrpcTransport: baseUrl ${options.baseUrl} has origin ${url.origin}, but the session manager is connected to ${sm.authority}`,
    );
  }
  const limits = validateReadWriteMaxBytes(options.readMaxBytes, options.writeMaxBytes, options.compressMinBytes);
  const useBinaryFormat = options.useBinaryFormat ?? true;
  const sendCompression = options.sendCompression ?? null;
  const acceptCompression = options.acceptCompression ?? [compressionGzip, compressionBrotli];
  const baseHeaders: LeanNodeHeaders = {
    "content-type": useBinaryFormat ? "application/grpc+proto" : "application/grpc+json",
    te: "trailers",
    "user-agent": userAgent,
  };
  if (sendCompression !== null) baseHeaders["grpc-encoding"] = sendCompression.name;
  if (acceptCompression.length > 0)
    baseHeaders["grpc-accept-encoding"] = acceptCompression.map((c) => c.name).join(",");
  const ep: LeanEndpoint = {
    sm,
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    basePath: url.pathname.replace(/\/+$/, ""),
    useBinaryFormat,
    sendCompression,
    acceptCompression,
    compressMinBytes: limits.compressMinBytes,
    readMaxBytes: limits.readMaxBytes,
    writeMaxBytes: limits.writeMaxBytes,
    interceptors: options.interceptors ?? [],
    baseHeaders: Object.freeze(baseHeaders),
    jsonOptions: options.jsonOptions,
    binaryOptions: options.binaryOptions,
  };
  const defaultTimeoutMs = options.defaultTimeoutMs;
  const methods = new Map<AnyMethod, LeanMethod>();

  function methodInfo(method: AnyMethod): LeanMethod {
    let info = methods.get(method);
    if (info === undefined) {
      const lookup = createMethodSerializationLookup(method, ep.binaryOptions, ep.jsonOptions, limits);
      const path = `${ep.basePath}/${method.parent.typeName}/${method.name}`;
      info = {
        path,
        url: ep.baseUrl + `/${method.parent.typeName}/${method.name}`,
        inputSchema: method.input,
        input: lookup.getI(ep.useBinaryFormat) as Serialization<MessageShape<DescMessage>>,
        output: lookup.getO(ep.useBinaryFormat) as Serialization<MessageShape<DescMessage>>,
      };
      methods.set(method, info);
    }
    return info;
  }

  function effectiveTimeout(timeoutMs: number | undefined): number | undefined {
    return timeoutMs === undefined ? defaultTimeoutMs : timeoutMs <= 0 ? undefined : timeoutMs;
  }

  /** Request header fields: the shared frozen set unless the call has metadata or a deadline. */
  function callHeaders(init: HeadersInit | undefined, timeoutMs: number | undefined): Readonly<LeanNodeHeaders> {
    if (init === undefined && timeoutMs === undefined) return ep.baseHeaders;
    const h: LeanNodeHeaders = {};
    if (init !== undefined) leanAppendHeadersInit(h, init);
    const ua = h["user-agent"];
    Object.assign(h, ep.baseHeaders);
    if (ua !== undefined) h["user-agent"] = ua;
    if (timeoutMs !== undefined) h["grpc-timeout"] = leanEncodeTimeout(timeoutMs);
    return h;
  }

  function toNodeHeaders(headers: Headers): LeanNodeHeaders {
    const h: LeanNodeHeaders = {};
    leanAppendHeadersInit(h, headers);
    return h;
  }

  function webHeaders(fields: Readonly<LeanNodeHeaders>): Headers {
    const headers = new Headers();
    for (const key of Object.keys(fields)) {
      const value = fields[key];
      if (Array.isArray(value)) for (const v of value) headers.append(key, v);
      else if (value !== undefined) headers.append(key, value);
    }
    return headers;
  }

  function frameUnary(info: LeanMethod, message: MessageShape<DescMessage>): Buffer | Promise<Buffer> {
    const bytes = info.input.serialize(message);
    if (ep.sendCompression !== null && bytes.byteLength >= ep.compressMinBytes) {
      return ep.sendCompression.compress(bytes).then((data) => leanEncodeEnvelope(leanFlagCompressed, data));
    }
    return leanEncodeEnvelope(0, bytes);
  }

  function startUnary(call: LeanUnaryCall, headers: Readonly<LeanNodeHeaders>, message: MessageShape<DescMessage>) {
    const done = new Promise<UnaryResult>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    if (call.error !== undefined) return Promise.reject(call.error);
    let frame: Buffer | Promise<Buffer>;
    try {
      frame = frameUnary(call.info, message);
    } catch (e) {
      call.fail(ConnectError.from(e, Code.Internal));
      return done;
    }
    if (frame instanceof Promise) {
      frame.then(
        (f) => call.open(headers, f),
        (e) => call.fail(ConnectError.from(e, Code.Internal)),
      );
    } else {
      call.open(headers, frame);
    }
    return done;
  }

  function unaryResponse<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    result: UnaryResult,
  ): UnaryResponse<I, O> {
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    return {
      stream: false,
      service: method.parent,
      method,
      message: result.message as MessageShape<O>,
      get header() {
        header ??= leanNodeToWebHeaders(result.headers);
        return header;
      },
      get trailer() {
        trailer ??= leanNodeToWebHeaders(result.trailers);
        return trailer;
      },
    };
  }

  /** Request object for interceptors, with header, signal and contextValues made on first read. */
  function requestCommon(
    call: LeanCall,
    method: AnyMethod,
    init: HeadersInit | undefined,
    timeoutMs: number | undefined,
    contextValues: ContextValues | undefined,
  ) {
    let header: Headers | undefined;
    return {
      service: method.parent,
      requestMethod: "POST",
      url: call.info.url,
      get header() {
        header ??= webHeaders(callHeaders(init, timeoutMs));
        return header;
      },
      get contextValues() {
        contextValues ??= createContextValues();
        return contextValues;
      },
      get signal() {
        return call.signal;
      },
      /** Whether header was materialized (then it is the source of truth). */
      headerRead: () => header !== undefined,
    };
  }

  /** Header fields for a request that went through interceptors. */
  function interceptedHeaders(
    call: LeanCall,
    original: { headerRead(): boolean },
    req: { header: Headers; signal: AbortSignal },
    init: HeadersInit | undefined,
    timeoutMs: number | undefined,
  ): Readonly<LeanNodeHeaders> {
    if ((req as unknown) === original) {
      if (!original.headerRead()) return callHeaders(init, timeoutMs);
      return toNodeHeaders(req.header);
    }
    call.linkSignal(req.signal);
    return toNodeHeaders(req.header);
  }

  return {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const info = methodInfo(method);
      const timeout = effectiveTimeout(timeoutMs);
      const call = new LeanUnaryCall(ep, info, signal, timeout);
      const message = create(method.input, input) as MessageShape<DescMessage>;
      if (ep.interceptors.length === 0) {
        return unaryResponse(method, await startUnary(call, callHeaders(header, timeout), message));
      }
      const original = Object.assign(requestCommon(call, method, header, timeout, contextValues), {
        stream: false as const,
        method,
        message,
      });
      const next = composeInterceptors(async (req: UnaryRequest<I, O>): Promise<UnaryResponse<I, O>> => {
        const headers = interceptedHeaders(call, original, req, header, timeout);
        return unaryResponse(method, await startUnary(call, headers, req.message as MessageShape<DescMessage>));
      }, ep.interceptors);
      try {
        return await next(original as unknown as UnaryRequest<I, O>);
      } catch (e) {
        throw call.error ?? ConnectError.from(e);
      } finally {
        // An interceptor may answer without calling next: stop the deadline timer then too.
        if (!call.started && !call.done) call.fail(new ConnectError("call ended by an interceptor", Code.Canceled));
      }
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      const info = methodInfo(method);
      const timeout = effectiveTimeout(timeoutMs);
      const start = (call: LeanStreamCall, headers: Readonly<LeanNodeHeaders>): Promise<StreamResponse<I, O>> => {
        const ready = new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          call.resolveResponse = resolve;
          call.rejectResponse = reject;
        });
        if (call.error !== undefined) {
          call.abortInput(call.error);
          return Promise.reject(call.error);
        }
        call.open(headers, undefined);
        return ready.then((responseHeaders) => {
          let h: Headers | undefined;
          let t: Headers | undefined;
          return {
            stream: true,
            service: method.parent,
            method,
            message: call.messages() as AsyncIterable<MessageShape<O>>,
            get header() {
              h ??= leanNodeToWebHeaders(responseHeaders);
              return h;
            },
            // Filled in when the stream ends: read it after the messages.
            get trailer() {
              if (t === undefined) {
                if (call.trailers === undefined) return new Headers();
                t = leanNodeToWebHeaders(call.trailers);
              }
              return t;
            },
          };
        });
      };
      if (ep.interceptors.length === 0) {
        const call = new LeanStreamCall(ep, info, signal, timeout, input);
        return start(call, callHeaders(header, timeout));
      }
      // With interceptors the request messages are whatever the chain hands to next().
      const first = new LeanStreamCall(ep, info, signal, timeout, input);
      const original = Object.assign(requestCommon(first, method, header, timeout, contextValues), {
        stream: true as const,
        method,
        message: normalizeIterable(method.input, input),
      });
      const next = composeInterceptors(async (req: StreamRequest<I, O>): Promise<StreamResponse<I, O>> => {
        const headers = interceptedHeaders(first, original, req, header, timeout);
        if (req.message !== original.message) first.replaceInput(req.message);
        return start(first, headers);
      }, ep.interceptors);
      try {
        return await next(original as unknown as StreamRequest<I, O>);
      } catch (e) {
        throw first.error ?? ConnectError.from(e);
      } finally {
        // An interceptor may answer without calling next: stop the deadline timer then too.
        if (!first.started && !first.done) first.fail(new ConnectError("call ended by an interceptor", Code.Canceled));
      }
    },
  };
}

function normalizeIterable<I extends DescMessage>(
  schema: I,
  input: AsyncIterable<MessageInitShape<I>>,
): AsyncIterable<MessageShape<I>> {
  return {
    [Symbol.asyncIterator]() {
      const it = input[Symbol.asyncIterator]();
      return {
        next: () =>
          it.next().then((r) => (r.done === true ? r : { done: false, value: create(schema, r.value) })) as Promise<
            IteratorResult<MessageShape<I>>
          >,
        return: (value?: unknown) =>
          (it.return?.(value) ?? Promise.resolve({ done: true, value })) as Promise<IteratorResult<MessageShape<I>>>,
      };
    },
  };
}
