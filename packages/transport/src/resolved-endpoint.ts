import type * as http2 from "node:http2";
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip, Http2SessionManager } from "@connectrpc/connect-node";
import type { Http2Connection } from "./http2-connection.js";
import type { LeanGrpcTransportOptions, LeanSessionManager } from "./lean-grpc-transport-options.js";
import { type Serialization, validateReadWriteMaxBytes } from "./message-serialization.js";
import type { NodeHeaders } from "./node-headers.js";

// gRPC's user-agent form is grpc-<language>-<implementation>/<version>.
const userAgent = "grpc-node-meshlite-lean/0.1.0";

/** Everything about the endpoint that is computed once per transport. */
export interface ResolvedEndpoint {
  readonly sm: LeanSessionManager;
  /**
   * Opens a stream at once on a ready connection (throws CallNotSentError when it is not ready):
   * the session manager's openStream when it is meshlite's Http2Connection; undefined for
   * connect-node's, which only has the promise-returning request().
   */
  readonly openStream: ((headers: http2.OutgoingHttpHeaders) => http2.ClientHttp2Stream) | undefined;
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
  readonly baseHeaders: Readonly<NodeHeaders>;
  readonly jsonOptions: LeanGrpcTransportOptions["jsonOptions"];
  readonly binaryOptions: LeanGrpcTransportOptions["binaryOptions"];
}

/** Everything about a method that is computed once per method and transport. */
export interface MethodInfo {
  readonly path: string;
  /** The endpoint's base header fields plus `:method` and `:path`: the header block of a call with no metadata and no deadline. Frozen. */
  readonly headers: Readonly<NodeHeaders>;
  readonly url: string;
  readonly inputSchema: DescMessage;
  readonly input: Serialization<MessageShape<DescMessage>>;
  readonly output: Serialization<MessageShape<DescMessage>>;
}

export type AnyMethod = DescMethodUnary | DescMethodStreaming;

/** Validates createLeanGrpcTransport's options; computes the endpoint (message size limits included). */
export function resolveEndpoint(options: LeanGrpcTransportOptions): ResolvedEndpoint {
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
  const baseHeaders: NodeHeaders = {
    "content-type": useBinaryFormat ? "application/grpc+proto" : "application/grpc+json",
    te: "trailers",
    "user-agent": userAgent,
  };
  if (sendCompression !== null) baseHeaders["grpc-encoding"] = sendCompression.name;
  if (acceptCompression.length > 0)
    baseHeaders["grpc-accept-encoding"] = acceptCompression.map((c) => c.name).join(",");
  const withOpenStream = sm as Partial<Pick<Http2Connection, "openStream">>;
  return {
    sm,
    openStream: typeof withOpenStream.openStream === "function" ? withOpenStream.openStream.bind(sm) : undefined,
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
}
