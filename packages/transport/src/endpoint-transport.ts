import type { Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  type GrpcTransportOptions,
} from "@connectrpc/connect-node";
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
  /** The connection to the endpoint; calls go nowhere else. */
  connection: Http2Connection;
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
 * A Connect transport whose calls all go over one endpoint's connection,
 * addressed to the connection's origin (the service name), not the address.
 */
export function createEndpointTransport(options: EndpointTransportOptions): Transport {
  const { connection, protocol = "grpc", grpcImplementation = "lean", ...rest } = options;
  const common = {
    ...rest,
    baseUrl: connection.authority,
    httpVersion: "2" as const,
    sessionManager: connection,
  };
  switch (protocol) {
    case "grpc":
      return grpcImplementation === "lean"
        ? createLeanGrpcTransport({ ...rest, baseUrl: connection.authority, sessionManager: connection })
        : createGrpcTransport(common);
    case "connect":
      return createConnectTransport(common);
    case "grpc-web":
      return createGrpcWebTransport(common);
  }
}
