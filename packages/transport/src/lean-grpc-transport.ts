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
  type Interceptor,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import type { GrpcTransportOptions, Http2SessionOptions } from "@connectrpc/connect-node";
import { type AnyMethod, type LeanMethod, leanResolveEndpoint } from "./lean-endpoint.js";
import { callHeaders, composeInterceptors, interceptedHeaders, requestCommon } from "./lean-request.js";
import { LeanStreamCall, normalizeIterable, startStream } from "./lean-stream-call.js";
import { LeanUnaryCall, startUnary, unaryResponse } from "./lean-unary-call.js";
import { createMethodSerializationLookup, type Serialization } from "./message-serialization.js";

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

/**
 * A gRPC-protocol Connect Transport written straight on node:http2, for a low CPU cost per call:
 * no async-iterable pipes, no AbortController unless the signal is read, no Headers unless asked for.
 */
export function createLeanGrpcTransport(options: LeanGrpcTransportOptions): Transport {
  const ep = leanResolveEndpoint(options);
  const defaultTimeoutMs = options.defaultTimeoutMs;
  const methods = new Map<AnyMethod, LeanMethod>();

  function methodInfo(method: AnyMethod): LeanMethod {
    let info = methods.get(method);
    if (info === undefined) {
      // ep as the limits: serialize() fails a request over writeMaxBytes with RESOURCE_EXHAUSTED
      // before it is framed (so it is never sent), and parse() one over readMaxBytes.
      const lookup = createMethodSerializationLookup(method, ep.binaryOptions, ep.jsonOptions, ep);
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
      // Before the call exists: a create() that throws leaves no deadline timer or abort listener.
      const message = create(method.input, input) as MessageShape<DescMessage>;
      const call = new LeanUnaryCall(ep, info, signal, timeout);
      if (ep.interceptors.length === 0) {
        return unaryResponse(method, await startUnary(call, callHeaders(ep, header, timeout), message));
      }
      const original = Object.assign(requestCommon(ep, call, method, header, timeout, contextValues), {
        stream: false as const,
        method,
        message,
      });
      const next = composeInterceptors(async (req: UnaryRequest<I, O>): Promise<UnaryResponse<I, O>> => {
        const headers = interceptedHeaders(ep, call, original, req, header, timeout);
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
      if (ep.interceptors.length === 0) {
        const call = new LeanStreamCall(ep, info, signal, timeout, input);
        return startStream(method, call, callHeaders(ep, header, timeout));
      }
      // With interceptors the request messages are whatever the chain hands to next().
      const first = new LeanStreamCall(ep, info, signal, timeout, input);
      const original = Object.assign(requestCommon(ep, first, method, header, timeout, contextValues), {
        stream: true as const,
        method,
        message: normalizeIterable(method.input, input),
      });
      const next = composeInterceptors(async (req: StreamRequest<I, O>): Promise<StreamResponse<I, O>> => {
        const headers = interceptedHeaders(ep, first, original, req, header, timeout);
        if (req.message !== original.message) first.replaceInput(req.message);
        return startStream(method, first, headers);
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
