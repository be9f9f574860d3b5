import type * as http2 from "node:http2";
import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageShape } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip, Http2SessionManager } from "@connectrpc/connect-node";
import type { H2Stream } from "./h2-stream.js";
import type { Http2Connection } from "./http2-connection.js";
import type { LeanGrpcTransportOptions } from "./lean-grpc-transport-options.js";
import { type Serialization, validateReadWriteMaxBytes } from "./message-serialization.js";
import { nodeH2Stream, nodeStreamOf } from "./node-h2-stream.js";
import type { NodeHeaders } from "./node-headers.js";

// gRPC's user-agent form is grpc-<language>-<implementation>/<version>.
const userAgent = "grpc-node-meshlite-lean/0.1.0";

/** Everything about the endpoint that is computed once per transport. */
export interface ResolvedEndpoint {
  /**
   * Opens a stream at once on a ready connection (throws CallNotSentError when it is not ready);
   * undefined for connect-node's session manager, which only has the promise-returning request().
   * `headers` carries `:method` and `:path`.
   */
  readonly openStream: ((headers: http2.OutgoingHttpHeaders) => H2Stream) | undefined;
  /** Opens a stream once the connection is ready (dialling it if idle). */
  readonly openStreamWhenReady: (headers: http2.OutgoingHttpHeaders) => Promise<H2Stream>;
  /** Told when response bytes were read: connect-node's session manager keeps its idle bookkeeping by it. */
  readonly bytesRead: ((stream: H2Stream) => void) | undefined;
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
  const streams = openStreams(options, url);
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
  return {
    ...streams,
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

/** How calls open streams: on meshlite's connection, on its Http2Connection, or on connect-node's session manager. */
function openStreams(
  options: LeanGrpcTransportOptions,
  url: URL,
): Pick<ResolvedEndpoint, "openStream" | "openStreamWhenReady" | "bytesRead"> {
  const { connection, sessionManager } = options;
  if (connection !== undefined && sessionManager !== undefined) {
    throw new Error("createLeanGrpcTransport: give connection or sessionManager, not both");
  }
  const authority = connection?.authority ?? sessionManager?.authority;
  if (authority !== undefined && authority !== url.origin) {
    throw new Error(
      `createLeanGrpcTransport: baseUrl ${options.baseUrl} has origin ${url.origin}, but the ${connection ? "connection" : "session manager"} is connected to ${authority}`,
    );
  }
  if (connection !== undefined) {
    return {
      openStream: (headers) => connection.openStream(headers),
      openStreamWhenReady: async (headers) => {
        await connection.whenConnected();
        return connection.openStream(headers);
      },
      bytesRead: undefined,
    };
  }
  const sm =
    sessionManager ??
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
  const openWhenReady = (headers: http2.OutgoingHttpHeaders) =>
    sm.request("POST", headers[":path"] as string, headers, {}).then(nodeH2Stream);
  // meshlite's Http2Connection opens streams at once and needs no read bookkeeping.
  const withOpenStream = sm as Partial<Pick<Http2Connection, "openStream">>;
  if (typeof withOpenStream.openStream === "function") {
    const open = withOpenStream.openStream.bind(sm);
    return {
      openStream: (headers) => nodeH2Stream(open(headers)),
      openStreamWhenReady: openWhenReady,
      bytesRead: undefined,
    };
  }
  return {
    openStream: undefined,
    openStreamWhenReady: openWhenReady,
    bytesRead: (stream) => sm.notifyResponseByteRead(nodeStreamOf(stream)!),
  };
}
