import type * as http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { findTrailerError } from "./grpc-trailer-error.js";
import { nodeToWebHeaders } from "./node-headers.js";

// HTTP/2 error codes (RFC 9113 section 7) by number, for messages.
const h2CodeNames = [
  "NO_ERROR",
  "PROTOCOL_ERROR",
  "INTERNAL_ERROR",
  "FLOW_CONTROL_ERROR",
  "SETTINGS_TIMEOUT",
  "STREAM_CLOSED",
  "FRAME_SIZE_ERROR",
  "REFUSED_STREAM",
  "CANCEL",
  "COMPRESSION_ERROR",
  "CONNECT_ERROR",
  "ENHANCE_YOUR_CALM",
  "INADEQUATE_SECURITY",
  "HTTP_1_1_REQUIRED",
];

/** RST_STREAM code a client sends when it gives up on a call (gRPC over HTTP/2: CANCEL). */
export const rstCancel = 8;

function h2Name(code: number): string {
  return `${h2CodeNames[code] ?? "UNKNOWN"} (0x${code.toString(16)})`;
}

/**
 * The gRPC code for a stream reset by the peer, per the gRPC HTTP/2 mapping;
 * undefined for NO_ERROR and STREAM_CLOSED (the protocol decides those).
 */
export function errorFromRstCode(rstCode: number): ConnectError | undefined {
  let code: Code;
  switch (rstCode) {
    case 1:
    case 2:
    case 3:
    case 4:
    case 6:
    case 9:
    case 10:
      code = Code.Internal;
      break;
    case 7:
      code = Code.Unavailable;
      break;
    case 8:
      code = Code.Canceled;
      break;
    case 11:
      code = Code.ResourceExhausted;
      break;
    case 12:
    case 13:
      code = Code.PermissionDenied;
      break;
    default:
      return undefined;
  }
  return new ConnectError(`http/2 stream closed with error code ${h2Name(rstCode)}`, code);
}

/** A stream closed before any response header arrived. */
export function errorNoResponse(rstCode: number): ConnectError {
  return new ConnectError(
    `http/2 stream closed with error code ${h2Name(rstCode)} before the response was received`,
    Code.Internal,
  );
}

/** Maps an error from node:http2 (stream or session) to a ConnectError, as connect-node does. */
export function errorFromNode(reason: unknown): ConnectError {
  if (reason instanceof ConnectError) return reason;
  let code = Code.Internal;
  for (let e: unknown = reason, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const nodeCode = (e as { code?: unknown }).code;
    if (
      nodeCode === "ERR_STREAM_WRITE_AFTER_END" ||
      nodeCode === "ERR_STREAM_DESTROYED" ||
      nodeCode === "ERR_HTTP2_INVALID_STREAM" ||
      nodeCode === "ECONNRESET"
    ) {
      code = Code.Aborted;
      break;
    }
    if (
      nodeCode === "ETIMEDOUT" ||
      nodeCode === "ENOTFOUND" ||
      nodeCode === "EAI_AGAIN" ||
      nodeCode === "ECONNREFUSED" ||
      nodeCode === "ERR_HTTP2_GOAWAY_SESSION"
    ) {
      code = Code.Unavailable;
      break;
    }
  }
  const err = ConnectError.from(reason, code);
  if (err !== reason) err.cause = reason;
  return err;
}

/** gRPC code for a non-200 HTTP status (gRPC's http-grpc-status-mapping). */
export function codeFromHttpStatus(status: number): Code {
  switch (status) {
    case 400:
      return Code.Internal;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.Unavailable;
    default:
      return Code.Unknown;
  }
}

/**
 * True when these headers (or trailers) carry a plain OK status. This is the only check done on
 * the success path: no Headers object and no error is built for it.
 */
export function isOkStatus(fields: http2.IncomingHttpHeaders): boolean {
  return fields["grpc-status"] === "0" && fields["grpc-status-details-bin"] === undefined;
}

/**
 * The error a status carries (grpc-status, percent-decoded grpc-message, grpc-status-details-bin),
 * with the fields as the error's metadata; undefined for OK or no status. Same rules as Connect.
 */
export function statusError(fields: http2.IncomingHttpHeaders): ConnectError | undefined {
  if (fields["grpc-status"] === undefined && fields["grpc-status-details-bin"] === undefined) return undefined;
  if (isOkStatus(fields)) return undefined;
  return findTrailerError(nodeToWebHeaders(fields));
}
