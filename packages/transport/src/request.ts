import { type ContextValues, createContextValues, type Interceptor } from "@connectrpc/connect";
import { encodeGrpcTimeout } from "@meshlite/core";
import type { Call } from "./call.js";
import { appendHeadersInit, type NodeHeaders, nodeToWebHeaders } from "./node-headers.js";
import type { AnyMethod, ResolvedEndpoint } from "./resolved-endpoint.js";

export function composeInterceptors<T>(next: T, interceptors: Interceptor[]): T {
  let fn = next as unknown as Parameters<Interceptor>[0];
  for (let i = interceptors.length - 1; i >= 0; i--) fn = interceptors[i]!(fn);
  return fn as unknown as T;
}

/** Request header fields: the shared frozen set unless the call has metadata or a deadline. */
export function callHeaders(
  ep: ResolvedEndpoint,
  init: HeadersInit | undefined,
  timeoutMs: number | undefined,
): Readonly<NodeHeaders> {
  if (init === undefined && timeoutMs === undefined) return ep.baseHeaders;
  const h: NodeHeaders = {};
  if (init !== undefined) appendHeadersInit(h, init);
  const ua = h["user-agent"];
  Object.assign(h, ep.baseHeaders);
  if (ua !== undefined) h["user-agent"] = ua;
  if (timeoutMs !== undefined) h["grpc-timeout"] = encodeGrpcTimeout(timeoutMs);
  return h;
}

export function toNodeHeaders(headers: Headers): NodeHeaders {
  const h: NodeHeaders = {};
  appendHeadersInit(h, headers);
  return h;
}

/** Request object for interceptors, with header, signal and contextValues made on first read. */
export function requestCommon(
  ep: ResolvedEndpoint,
  call: Call,
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
      header ??= nodeToWebHeaders(callHeaders(ep, init, timeoutMs));
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
export function interceptedHeaders(
  ep: ResolvedEndpoint,
  call: Call,
  original: { headerRead(): boolean },
  req: { header: Headers; signal: AbortSignal },
  init: HeadersInit | undefined,
  timeoutMs: number | undefined,
): Readonly<NodeHeaders> {
  if ((req as unknown) === original) {
    if (!original.headerRead()) return callHeaders(ep, init, timeoutMs);
    return toNodeHeaders(req.header);
  }
  call.linkSignal(req.signal);
  return toNodeHeaders(req.header);
}
