import type * as http2 from "node:http2";
import type { DescMessage, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type UnaryResponse } from "@connectrpc/connect";
import { Call, noop } from "./call.js";
import { type Frame, frameMessage } from "./envelope.js";
import { statusError } from "./grpc-status.js";
import { type NodeHeaders, nodeToWebHeaders } from "./node-headers.js";
import { rawFields } from "./response-field.js";

export interface UnaryResult {
  message: MessageShape<DescMessage>;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | undefined;
}

/** A unary call: one framed request written with the end of stream, the response collected from chunks. */
export class UnaryCall extends Call {
  private frame: Frame | undefined = undefined;
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
    const headerErr = this.responseTrailers === undefined ? statusError(headers) : undefined;
    if (message === undefined) {
      this.fail(
        headerErr ??
          new ConnectError(
            "protocol error: missing output message for unary method",
            this.responseTrailers?.["grpc-status"] !== undefined ? Code.Unimplemented : Code.Unknown,
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
    this.resolve({ message, headers, trailers: this.responseTrailers });
  }

  protected onFail(err: ConnectError): void {
    this.abortSignal(err);
    this.reject(err);
  }
}

export function startUnary(call: UnaryCall, headers: Readonly<NodeHeaders>, message: MessageShape<DescMessage>) {
  const done = new Promise<UnaryResult>((resolve, reject) => {
    call.resolve = resolve;
    call.reject = reject;
  });
  if (call.error !== undefined) return Promise.reject(call.error);
  let frame: Buffer | Promise<Buffer>;
  try {
    frame = frameMessage(call.ep, call.info, message);
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

export function unaryResponse<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O>,
  result: UnaryResult,
): UnaryResponse<I, O> {
  let header: Headers | undefined;
  let trailer: Headers | undefined;
  const response = {
    stream: false as const,
    service: method.parent,
    method,
    message: result.message as MessageShape<O>,
    [rawFields]: result,
    get header() {
      header ??= nodeToWebHeaders(result.headers);
      return header;
    },
    get trailer() {
      trailer ??= nodeToWebHeaders(result.trailers);
      return trailer;
    },
  };
  return response;
}
