import { Code } from "@connectrpc/connect";
import { type CallProtocol, detectProtocol, parseTimeout, serviceOf, timeoutHeader } from "./call-protocol.js";
import type { ClientLimitName } from "./client-guard.js";
import type { Downstream } from "./downstream.js";
import type { ProxyError } from "./error-answer.js";
import type { Router } from "./router.js";
import type { Upstream } from "./upstream.js";

/** What admission needs from the proxy. */
export interface AdmissionContext {
  readonly router: Router<Upstream>;
  readonly maxHeaderBytes: number;
  readonly maxHeaderPairs: number;
  readonly maxInFlight: number;
  /** Counts a call that ran into a limit, on `/metrics`. */
  clientLimited(limit: ClientLimitName): void;
  /** Counts calls in flight (for limits and draining). */
  callStarted(): number;
  callEnded(): void;
}

/** A call the proxy forwards: counted in flight until the caller ends it. */
export interface AdmittedCall {
  readonly admitted: true;
  readonly protocol: CallProtocol;
  readonly upstream: Upstream;
  /** The client's timeout in ms; undefined when it set none. */
  readonly timeoutMs: number | undefined;
}

/** A call the proxy answers itself with an error; not counted in flight. */
export interface RejectedCall extends ProxyError {
  readonly admitted: false;
  /** Undefined when the request is none of gRPC, gRPC-web or Connect. */
  readonly protocol: CallProtocol | undefined;
  /** The route's name when the call matched one (for metrics), else undefined. */
  readonly route: string | undefined;
}

/**
 * Admission and routing: whether the proxy takes a call (a protocol it
 * forwards, headers within the limit, a well-formed timeout, a matching
 * route, room under the in-flight limit) and which route it goes to.
 */
export function admitCall(ctx: AdmissionContext, down: Downstream): AdmittedCall | RejectedCall {
  const protocol = detectProtocol(down.method, down.headers["content-type"]);
  if (protocol === undefined) {
    return rejected(
      protocol,
      Code.InvalidArgument,
      `unsupported request: ${down.method} with content-type ${JSON.stringify(down.headers["content-type"] ?? null)}; meshlite-proxy forwards ` +
        "gRPC (application/grpc), gRPC-web (application/grpc-web) and Connect (application/proto, application/json, application/connect+*) calls",
    );
  }
  if (down.method !== "POST" && down.method !== "GET") {
    return rejected(
      protocol,
      Code.Unimplemented,
      `method ${down.method} is not a gRPC or Connect call (expected POST, or GET for Connect)`,
    );
  }
  if (protocol === "grpc" && down.http1) {
    return rejected(protocol, Code.Unimplemented, "gRPC needs HTTP/2; over HTTP/1.1 use gRPC-web or Connect");
  }
  if (down.headerBytes > ctx.maxHeaderBytes) {
    ctx.clientLimited("header_bytes");
    return rejected(
      protocol,
      Code.ResourceExhausted,
      `request headers are ${down.headerBytes} bytes, over the proxy's limit of ${ctx.maxHeaderBytes}`,
    );
  }
  if (down.headerPairs > ctx.maxHeaderPairs) {
    ctx.clientLimited("header_pairs");
    return rejected(
      protocol,
      Code.ResourceExhausted,
      `request has ${down.headerPairs} header fields, over the proxy's limit of ${ctx.maxHeaderPairs}`,
    );
  }
  const timeoutMs = parseTimeout(protocol, down.headers);
  if (timeoutMs !== undefined && Number.isNaN(timeoutMs)) {
    const [name] = timeoutHeader(protocol, 0);
    return rejected(
      protocol,
      Code.InvalidArgument,
      `malformed ${name} header ${JSON.stringify(down.headers[name])}: expected ${name === "grpc-timeout" ? "1-8 digits and a unit H, M, S, m, u or n" : "milliseconds as digits"}`,
    );
  }
  const service = serviceOf(down.path.split("?")[0]);
  const upstream = ctx.router.match(down.authority, service);
  if (upstream === undefined) {
    return rejected(
      protocol,
      Code.Unimplemented,
      `no route for authority "${down.authority ?? ""}" and service "${service ?? ""}"; configured routes: ${ctx.router.describe()}`,
    );
  }
  if (ctx.callStarted() > ctx.maxInFlight) {
    ctx.callEnded();
    ctx.clientLimited("in_flight");
    return rejected(
      protocol,
      Code.ResourceExhausted,
      `the proxy has ${ctx.maxInFlight} calls in flight, its limit; try again later`,
      upstream.name,
    );
  }
  return { admitted: true, protocol, upstream, timeoutMs };
}

function rejected(protocol: CallProtocol | undefined, code: Code, message: string, route?: string): RejectedCall {
  return { admitted: false, protocol, code, message, route };
}
