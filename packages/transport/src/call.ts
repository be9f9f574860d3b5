import type * as http2 from "node:http2";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import { EnvelopeReader, flagCompressed } from "./envelope.js";
import { contentTypeRegExp } from "./grpc-content-type.js";
import {
  codeFromHttpStatus,
  errorFromNode,
  errorFromRstCode,
  errorNoResponse,
  isOkStatus,
  statusError,
} from "./grpc-status.js";
import type { H2Stream, H2StreamClose, H2StreamEvents } from "./h2-stream.js";
import { type NodeHeaders, nodeToWebHeaders } from "./node-headers.js";
import type { MethodInfo, ResolvedEndpoint } from "./resolved-endpoint.js";

/**
 * The error of a stream that closed with `error`. Its error stays the cause:
 * the channel reads marks (not sent, connection lost) from it.
 */
function streamError(outcome: H2StreamClose, error: Error, code: unknown): ConnectError {
  // The frame engine's errors carry no Node code: a lost connection is UNAVAILABLE, as gRPC
  // reports a broken transport; a reset (not-sent ones too) is mapped by its HTTP/2 code.
  const ownEngine = typeof code !== "string";
  if (ownEngine && outcome.connectionLost) {
    const err = new ConnectError(error.message, Code.Unavailable);
    err.cause = error;
    return err;
  }
  // node:http2 reports a reset by the peer as ERR_HTTP2_STREAM_ERROR.
  const fromRst = ownEngine || code === "ERR_HTTP2_STREAM_ERROR" ? errorFromRstCode(outcome.rstCode) : undefined;
  if (fromRst === undefined) return errorFromNode(error);
  fromRst.cause = error;
  return fromRst;
}

function onDeadline(call: Call) {
  call.fail(new ConnectError("the operation timed out", Code.DeadlineExceeded));
}
export function noop() {}

/** A call's own header object (never the shared frozen one) with the pseudo-headers of its request added. */
function withPseudoHeaders(headers: Readonly<NodeHeaders>, info: MethodInfo): NodeHeaders {
  const h = headers as NodeHeaders;
  h[":method"] = "POST";
  h[":path"] = info.path;
  return h;
}

/**
 * State shared by unary and streaming calls: the HTTP/2 stream, the deadline timer, the caller's
 * signal, and the lazily created signal handed to interceptors. The call is its stream's
 * H2StreamEvents: no closures are made per call.
 */
export abstract class Call implements H2StreamEvents {
  stream: H2Stream | undefined = undefined;
  headers: http2.IncomingHttpHeaders | undefined = undefined;
  responseTrailers: http2.IncomingHttpHeaders | undefined = undefined;
  compression: Compression | null = null;
  /** Set once open() was called. */
  started = false;
  /** Set once the call is over on the wire (success or failure). */
  done = false;
  /** Set when the call failed; the error every reader gets. */
  error: ConnectError | undefined = undefined;
  readonly reader: EnvelopeReader;
  private timer: ReturnType<typeof setTimeout> | undefined = undefined;
  private userSignal: AbortSignal | undefined;
  private controller: AbortController | undefined = undefined;
  private extraSignal: AbortSignal | undefined = undefined;

  constructor(
    readonly ep: ResolvedEndpoint,
    readonly info: MethodInfo,
    signal: AbortSignal | undefined,
    timeoutMs: number | undefined,
  ) {
    this.reader = new EnvelopeReader(ep.readMaxBytes, this);
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
  open(headers: Readonly<NodeHeaders>, body: Buffer | undefined): void {
    this.started = true;
    if (this.done) return;
    const ep = this.ep;
    const fields = headers === ep.baseHeaders ? this.info.headers : withPseudoHeaders(headers, this.info);
    const openStream = ep.openStream;
    if (openStream !== undefined) {
      let stream: H2Stream | undefined;
      try {
        stream = openStream(fields);
      } catch {
        // Not ready (CallNotSentError): wait for the connection, or fail as opening again fails.
      }
      if (stream !== undefined) {
        this.attach(stream, body);
        return;
      }
    }
    ep.openStreamWhenReady(fields).then(
      (s) => this.attach(s, body),
      (reason) => this.fail(errorFromNode(reason)),
    );
  }

  private attach(stream: H2Stream, body: Buffer | undefined): void {
    // Listened to even when the call failed (deadline, cancel) while the stream was being opened:
    // its events are then ignored, and a node:http2 stream's error is not unhandled.
    stream.listen(this);
    if (this.done) {
      stream.cancel();
      return;
    }
    this.stream = stream;
    if (body !== undefined) stream.end(body);
    else this.onAttached(stream);
  }

  protected onAttached(_stream: H2Stream): void {}

  /** H2StreamEvents: the response's headers. */
  response(headers: http2.IncomingHttpHeaders, endStream: boolean): void {
    if (this.done) return;
    this.onResponse(headers);
    // A trailers-only response: no end() follows.
    if (endStream) this.end();
  }

  /** H2StreamEvents: response body bytes. */
  data(chunk: Buffer): void {
    if (this.done) return;
    this.ep.bytesRead?.(this.stream!);
    const err = this.reader.push(chunk);
    if (err) this.fail(err);
  }

  /** H2StreamEvents: the response's trailers. */
  trailers(trailers: http2.IncomingHttpHeaders): void {
    this.responseTrailers = trailers;
  }

  /** H2StreamEvents: the response ended normally. */
  end(): void {
    if (this.done) return;
    if (this.headers === undefined) {
      this.fail(errorNoResponse(0));
      return;
    }
    const incomplete = this.reader.end();
    if (incomplete) {
      this.fail(incomplete);
      return;
    }
    this.onEnd();
  }

  /** H2StreamEvents: the stream is over; a call not ended by now fails, unless its response is whole. */
  close(outcome: H2StreamClose): void {
    if (this.done) return;
    const { rstCode, error } = outcome;
    const code = (error as { code?: unknown } | undefined)?.code;
    // A write racing the server's end of the call: the response decides the outcome.
    if (error !== undefined && code !== "ERR_STREAM_WRITE_AFTER_END") {
      this.fail(streamError(outcome, error, code));
      return;
    }
    const fromRst = errorFromRstCode(rstCode);
    if (fromRst) {
      this.fail(fromRst);
      return;
    }
    if (this.headers === undefined) {
      this.fail(errorNoResponse(rstCode));
      return;
    }
    this.end();
  }

  /** Checks :status, content-type and grpc-encoding of the response headers. */
  protected checkHeaders(headers: http2.IncomingHttpHeaders): ConnectError | undefined {
    const status = headers[":status"] as number | undefined;
    if (status !== 200) {
      return new ConnectError(`HTTP ${status}`, codeFromHttpStatus(status ?? 0), nodeToWebHeaders(headers));
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
          nodeToWebHeaders(headers),
        );
      }
      this.compression = found;
    }
    return undefined;
  }

  /** Decompresses a frame if flagged, then parses it with the method's output codec. */
  protected decode(flags: number, data: Uint8Array): MessageShape<DescMessage> | Promise<MessageShape<DescMessage>> {
    if ((flags & flagCompressed) === 0) return this.info.output.parse(data);
    const compression = this.compression;
    if (compression === null) {
      throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
    }
    return compression.decompress(data, this.ep.readMaxBytes).then((bytes) => this.info.output.parse(bytes));
  }

  /** The error of the final status, with header and trailer fields as metadata (Connect's rules). */
  protected trailerError(): ConnectError | undefined {
    const trailers = this.responseTrailers;
    if (trailers !== undefined && isOkStatus(trailers)) return undefined;
    const err = trailers === undefined ? undefined : statusError(trailers);
    if (err) {
      nodeToWebHeaders(this.headers).forEach((value, key) => {
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
    if (stream !== undefined && !stream.destroyed) stream.cancel();
    this.onFail(err);
  }
}
