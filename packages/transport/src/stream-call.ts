import type * as http2 from "node:http2";
import type { DescMessage, DescMethodStreaming, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type StreamResponse } from "@connectrpc/connect";
import { Call, noop } from "./call.js";
import { type Frame, frameMessage } from "./envelope.js";
import { statusError } from "./grpc-status.js";
import type { H2Stream } from "./h2-stream.js";
import { type NodeHeaders, nodeToWebHeaders } from "./node-headers.js";
import type { MethodInfo, ResolvedEndpoint } from "./resolved-endpoint.js";
import { rawFields } from "./response-field.js";

// Response messages buffered before the stream is paused, and the level it resumes at.
const streamHighWater = 32;
const streamLowWater = 8;

/** A streaming call: request messages written as the input yields them, responses queued for the reader. */
export class StreamCall extends Call {
  private queue: (Frame | undefined)[] = [];
  private head = 0;
  private paused = false;
  /** The stream ended and its final status was read: endError is that status's error, if any. */
  private ended = false;
  private endError: ConnectError | undefined = undefined;
  private waiter: { resolve(r: IteratorResult<unknown>): void; reject(e: unknown): void } | undefined = undefined;
  private finished = false;
  private inputIt: AsyncIterator<unknown> | undefined = undefined;
  private inputDone = false;
  /** The response's trailer, once read; filled in at the end if it was read before the trailers came. */
  trailer: Headers | undefined = undefined;
  private trailerEarly = false;
  resolveResponse: (headers: http2.IncomingHttpHeaders) => void = noop;
  rejectResponse: (err: ConnectError) => void = noop;

  constructor(
    ep: ResolvedEndpoint,
    info: MethodInfo,
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
    const err = this.checkHeaders(headers) ?? statusError(headers);
    if (err) {
      this.fail(err);
      return;
    }
    this.resolveResponse(headers);
  }

  protected override onAttached(stream: H2Stream): void {
    void this.pump(stream);
  }

  /** Writes the request messages, honouring the stream's backpressure. */
  private async pump(stream: H2Stream): Promise<void> {
    const it = this.input[Symbol.asyncIterator]();
    this.inputIt = it;
    const { ep, info } = this;
    try {
      for (;;) {
        const r = await it.next();
        if (this.done || stream.destroyed) return;
        if (r.done === true) break;
        let frame = frameMessage(ep, info, create(info.inputSchema, r.value as MessageShape<DescMessage>));
        if (frame instanceof Promise) {
          frame = await frame;
          if (this.done || stream.destroyed) return;
        }
        // Past the stream's window: wait for it to drain. A stream that closes
        // instead ends the call, and with it this wait.
        if (!stream.write(frame)) await new Promise<void>((resolve) => stream.onDrain(resolve));
      }
      this.inputDone = true;
      if (!stream.destroyed) stream.end();
    } catch (e) {
      this.inputDone = true;
      this.fail(ConnectError.from(e, Code.Internal));
    }
  }

  /** The response's trailer: one object, so a copy of it taken early (a spread of the response) sees the trailers too. */
  responseTrailer(): Headers {
    if (this.trailer === undefined) {
      this.trailer = nodeToWebHeaders(this.responseTrailers);
      this.trailerEarly = this.responseTrailers === undefined;
    }
    return this.trailer;
  }

  protected onEnd(): void {
    if (this.trailerEarly && this.responseTrailers !== undefined) {
      this.trailerEarly = false;
      const trailer = this.trailer!;
      nodeToWebHeaders(this.responseTrailers).forEach((value, key) => {
        trailer.append(key, value);
      });
    }
    // A trailers-only response had its status checked with the headers.
    this.endError =
      this.responseTrailers === undefined && this.headers?.["grpc-status"] !== undefined
        ? undefined
        : this.trailerError();
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

/** Opens a streaming call; resolves with the response once its headers arrived. */
export function startStream<I extends DescMessage, O extends DescMessage>(
  method: DescMethodStreaming<I, O>,
  call: StreamCall,
  headers: Readonly<NodeHeaders>,
): Promise<StreamResponse<I, O>> {
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
    return {
      stream: true,
      service: method.parent,
      method,
      message: call.messages() as AsyncIterable<MessageShape<O>>,
      [rawFields]: {
        headers: responseHeaders,
        get trailers() {
          return call.responseTrailers;
        },
      },
      get header() {
        h ??= nodeToWebHeaders(responseHeaders);
        return h;
      },
      // Filled in when the stream ends: read it after the messages.
      get trailer() {
        return call.responseTrailer();
      },
    };
  });
}

export function normalizeIterable<I extends DescMessage>(
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
