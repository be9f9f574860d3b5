import type * as http2 from "node:http2";
import type { BinaryReadOptions, BinaryWriteOptions, JsonReadOptions, JsonWriteOptions } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import type { GrpcTransportOptions, Http2SessionOptions } from "@connectrpc/connect-node";
import type { H2StreamConnection } from "./h2-stream.js";

/** connect-node's HTTP/2 session seam: `{ authority, request(), notifyResponseByteRead() }`. */
export type LeanSessionManager = NonNullable<GrpcTransportOptions["sessionManager"]>;

/** Options of createLeanGrpcTransport; the fields mirror connect-node's GrpcTransportOptions. */
export type LeanGrpcTransportOptions = {
  /** Base URL of every call, e.g. `http://10.0.0.7:50051`; its origin must equal the session manager's authority. Required. */
  baseUrl: string;
  /**
   * meshlite's connection to run the calls on (createFrameEngineConnection: meshlite's own
   * HTTP/2, the cheapest; or nodeH2StreamConnection), connected to baseUrl's origin. Default:
   * none; sessionManager is used. Not with sessionManager.
   */
  connection?: H2StreamConnection;
  /** The HTTP/2 session manager to use (connect-node's seam). Default: a new connect-node Http2SessionManager for baseUrl. */
  sessionManager?: LeanSessionManager;
  /** Options for the default session manager's http2.connect(). Default: none. Ignored with sessionManager or connection. */
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
