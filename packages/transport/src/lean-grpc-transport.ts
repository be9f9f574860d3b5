import type {
  DescMessage,
  DescMethodStreaming,
  DescMethodUnary,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type StreamRequest,
  type StreamResponse,
  type Transport,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import type { LeanGrpcTransportOptions } from "./lean-grpc-transport-options.js";
import { createMethodSerializationLookup, type Serialization } from "./message-serialization.js";
import { callHeaders, composeInterceptors, interceptedHeaders, requestCommon } from "./request.js";
import { type AnyMethod, type MethodInfo, resolveEndpoint } from "./resolved-endpoint.js";
import { normalizeIterable, StreamCall, startStream } from "./stream-call.js";
import { startUnary, UnaryCall, unaryResponse } from "./unary-call.js";

/**
 * A gRPC-protocol Connect Transport written straight on node:http2, for a low CPU cost per call:
 * no async-iterable pipes, no AbortController unless the signal is read, no Headers unless asked for.
 */
export function createLeanGrpcTransport(options: LeanGrpcTransportOptions): Transport {
  const ep = resolveEndpoint(options);
  const defaultTimeoutMs = options.defaultTimeoutMs;
  const methods = new Map<AnyMethod, MethodInfo>();

  function methodInfo(method: AnyMethod): MethodInfo {
    let info = methods.get(method);
    if (info === undefined) {
      // ep as the limits: serialize() fails a request over writeMaxBytes with RESOURCE_EXHAUSTED
      // before it is framed (so it is never sent), and parse() one over readMaxBytes.
      const lookup = createMethodSerializationLookup(method, ep.binaryOptions, ep.jsonOptions, ep);
      const path = `${ep.basePath}/${method.parent.typeName}/${method.name}`;
      info = {
        path,
        headers: Object.freeze({ ...ep.baseHeaders, ":method": "POST", ":path": path }),
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
      const call = new UnaryCall(ep, info, signal, timeout);
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
        const call = new StreamCall(ep, info, signal, timeout, input);
        return startStream(method, call, callHeaders(ep, header, timeout));
      }
      // With interceptors the request messages are whatever the chain hands to next().
      const first = new StreamCall(ep, info, signal, timeout, input);
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
