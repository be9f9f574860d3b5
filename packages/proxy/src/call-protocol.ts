import { encodeGrpcTimeout } from "@meshlite/core";

/** The wire protocol a client spoke, read from its content type. */
export type CallProtocol = "grpc" | "grpc-web" | "connect-unary" | "connect-stream";

/** gRPC's OK (Connect's `Code` has no member for it: a success is not an error). */
export const okCode = 0;

/**
 * Which protocol a request uses, from `content-type` and method; undefined
 * when it is none of gRPC, gRPC-web or Connect. Connect unary GETs carry the
 * message in the query string and have no content type.
 */
export function detectProtocol(method: string | undefined, contentType: string | undefined): CallProtocol | undefined {
  if (method === "GET") return "connect-unary";
  if (contentType === undefined) return undefined;
  const ct = contentType.toLowerCase();
  if (ct.startsWith("application/grpc-web")) return "grpc-web";
  if (ct.startsWith("application/grpc")) return "grpc";
  if (ct.startsWith("application/connect+")) return "connect-stream";
  if (ct.startsWith("application/proto") || ct.startsWith("application/json")) return "connect-unary";
  return undefined;
}

/** Whether the protocol frames messages in 5-byte envelopes. */
export function isEnveloped(protocol: CallProtocol): boolean {
  return protocol !== "connect-unary";
}

const grpcTimeoutUnits: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/**
 * The call's timeout in ms from `grpc-timeout` (gRPC, gRPC-web) or
 * `connect-timeout-ms` (Connect); undefined when none; NaN when malformed.
 */
export function parseTimeout(protocol: CallProtocol, headers: Record<string, unknown>): number | undefined {
  if (protocol === "grpc" || protocol === "grpc-web") {
    const value = headers["grpc-timeout"];
    if (value === undefined) return undefined;
    const m = /^(\d{1,8})([HMSmun])$/.exec(String(value));
    if (!m) return Number.NaN;
    return Number(m[1]) * (grpcTimeoutUnits[m[2]!] ?? Number.NaN);
  }
  const value = headers["connect-timeout-ms"];
  if (value === undefined) return undefined;
  if (!/^\d{1,10}$/.test(String(value))) return Number.NaN;
  return Number(value);
}

/**
 * Writes a timeout back in the header form of the protocol: `grpc-timeout`
 * as the channel writes it (at most 8 digits, coarser units for long
 * deadlines), `connect-timeout-ms` in whole milliseconds.
 */
export function timeoutHeader(protocol: CallProtocol, ms: number): [string, string] {
  return protocol === "grpc" || protocol === "grpc-web"
    ? ["grpc-timeout", encodeGrpcTimeout(ms)]
    : ["connect-timeout-ms", String(Math.max(1, Math.floor(ms)))];
}

/** The gRPC service of a path `/pkg.Service/Method`, or undefined. */
export function serviceOf(path: string | undefined): string | undefined {
  if (path === undefined || path[0] !== "/") return undefined;
  const end = path.indexOf("/", 1);
  return end > 1 ? path.slice(1, end) : undefined;
}
