import type { Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  type GrpcTransportOptions,
} from "@connectrpc/connect-node";
import type { H2StreamConnection } from "./h2-stream.js";
import type { Http2Connection } from "./http2-connection.js";
import { createLeanGrpcTransport } from "./lean-grpc-transport.js";

/** The wire protocols a channel speaks. */
export type Protocol = "grpc" | "connect" | "grpc-web";

/**
 * The names of the Connect transport options a user passes through a channel
 * to every endpoint transport (interceptors, codecs, compression, limits).
 */
export const connectTransportOptionNames = [
  "interceptors",
  "useBinaryFormat",
  "jsonOptions",
  "binaryOptions",
  "sendCompression",
  "acceptCompression",
  "compressMinBytes",
  "readMaxBytes",
  "writeMaxBytes",
] as const;

/** Those options. */
export type ConnectTransportOptions = Partial<Pick<GrpcTransportOptions, (typeof connectTransportOptionNames)[number]>>;

/** Options of createEndpointTransport. */
export interface EndpointTransportOptions extends ConnectTransportOptions {
  /**
   * The connection to the endpoint; calls go nowhere else. connect-node's
   * transports need node:http2's (createHttp2Connection); the lean gRPC
   * transport takes that or meshlite's own HTTP/2 (createFrameEngineConnection,
   * see runsOnFrameEngine).
   */
  connection: Http2Connection | H2StreamConnection;
  /** Wire protocol. Default "grpc". */
  protocol?: Protocol;
  /**
   * Implementation of the gRPC protocol: meshlite's lean transport, or
   * connect-node's `createGrpcTransport`. Default "lean".
   */
  grpcImplementation?: GrpcImplementation;
}

/** Which gRPC client implementation a channel uses. */
export type GrpcImplementation = "lean" | "connect-node";

/**
 * Whether the transports of a protocol and gRPC implementation run on
 * meshlite's own HTTP/2 (createFrameEngineConnection): the lean gRPC transport
 * does, for its low CPU cost per call; connect-node's transports need
 * node:http2 (createHttp2Connection).
 */
export function runsOnFrameEngine(
  protocol: Protocol = "grpc",
  grpcImplementation: GrpcImplementation = "lean",
): boolean {
  return protocol === "grpc" && grpcImplementation === "lean";
}

/**
 * A Connect transport whose calls all go over one endpoint's connection,
 * addressed to the connection's origin (the service name), not the address.
 */
export function createEndpointTransport(options: EndpointTransportOptions): Transport {
  const { connection, protocol = "grpc", grpcImplementation = "lean", ...rest } = options;
  const baseUrl = connection.authority;
  const nodeConnection = isHttp2Connection(connection) ? connection : undefined;
  if (runsOnFrameEngine(protocol, grpcImplementation)) {
    return nodeConnection
      ? createLeanGrpcTransport({ ...rest, baseUrl, sessionManager: nodeConnection })
      : createLeanGrpcTransport({ ...rest, baseUrl, connection: connection as H2StreamConnection });
  }
  if (nodeConnection === undefined) {
    throw new Error(
      `createEndpointTransport: protocol "${protocol}" with gRPC implementation "${grpcImplementation}" needs a node:http2 connection (createHttp2Connection); only the lean gRPC transport runs on createFrameEngineConnection's`,
    );
  }
  const common = { ...rest, baseUrl, httpVersion: "2" as const, sessionManager: nodeConnection };
  switch (protocol) {
    case "grpc":
      return createGrpcTransport(common);
    case "connect":
      return createConnectTransport(common);
    case "grpc-web":
      return createGrpcWebTransport(common);
  }
}

/** node:http2's connection is a session manager (connect-node's seam); the frame engine's is not. */
function isHttp2Connection(connection: Http2Connection | H2StreamConnection): connection is Http2Connection {
  return typeof (connection as Partial<Http2Connection>).notifyResponseByteRead === "function";
}
