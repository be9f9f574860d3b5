import { ConnectError, type Interceptor, type StreamResponse } from "@connectrpc/connect";
import { assertKnownKeys, orcaHeaderName, orcaTrailerName } from "@meshlite/core";
import { createServerLoad, type ServerLoad, type ServerLoadOptions } from "./server-load.js";

/** Options of createOrcaInterceptor. */
export interface OrcaInterceptorOptions {
  /**
   * Where the report goes. Default "trailer": the `endpoint-load-metrics-bin`
   * trailer (binary, what gRPC clients read; Connect unary responses carry it
   * as a `trailer-` header, which Connect clients and meshlite read too).
   * "header": the `endpoint-load-metrics` header in its TEXT form, for
   * proxies that read Envoy's header (on streams it is sent with the response
   * headers, so it describes the load when the stream started).
   */
  form?: "trailer" | "header";
  /** The measurements to report; share one between several routers or with a grpc-js server. Default: createServerLoad(). */
  load?: ServerLoad;
  /** Options of the default `load` (not with `load`). */
  loadOptions?: ServerLoadOptions;
}

const optionKeys = ["form", "load", "loadOptions"];

/**
 * A connect-node server interceptor that attaches an ORCA load report to
 * every response (`connectNodeAdapter({ routes, interceptors: [createOrcaInterceptor()] })`):
 * CPU and memory utilization, event-loop utilization as
 * `application_utilization`, calls and errors per second. Clients that
 * balance by server load (meshlite's weighted round robin, gRPC's) read it.
 */
export function createOrcaInterceptor(options: OrcaInterceptorOptions = {}): Interceptor {
  assertKnownKeys(options, optionKeys, "createOrcaInterceptor");
  const form = options.form ?? "trailer";
  if (form !== "trailer" && form !== "header") {
    throw new TypeError(`createOrcaInterceptor: form must be "trailer" or "header", got ${JSON.stringify(form)}`);
  }
  if (options.load !== undefined && options.loadOptions !== undefined) {
    throw new TypeError("createOrcaInterceptor: give either load or loadOptions, not both");
  }
  const load = options.load ?? createServerLoad(options.loadOptions);
  const attach = (header: Headers, trailer: Headers) => {
    if (form === "trailer") trailer.set(orcaTrailerName, load.reportBase64());
    else header.set(orcaHeaderName, load.reportText());
  };
  return (next) => async (req) => {
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (e) {
      load.callEnded(false);
      if (e instanceof ConnectError) attach(e.metadata, e.metadata);
      throw e;
    }
    if (!res.stream) {
      load.callEnded(true);
      attach(res.header, res.trailer);
      return res;
    }
    if (form === "header") attach(res.header, res.trailer);
    return { ...res, message: reportAtEnd(res, load, form) };
  };
}

/** The response messages; when they end, the call is counted and (trailer form) the report set in the trailer. */
async function* reportAtEnd<T>(res: StreamResponse, load: ServerLoad, form: "trailer" | "header"): AsyncIterable<T> {
  let ok = false;
  try {
    yield* res.message as AsyncIterable<T>;
    ok = true;
  } catch (e) {
    if (e instanceof ConnectError && form === "trailer") e.metadata.set(orcaTrailerName, load.reportBase64());
    throw e;
  } finally {
    load.callEnded(ok);
    if (ok && form === "trailer") res.trailer.set(orcaTrailerName, load.reportBase64());
  }
}
