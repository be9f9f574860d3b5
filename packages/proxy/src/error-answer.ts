import { Code } from "@connectrpc/connect";
import type { CallProtocol } from "./call-protocol.js";
import { codeToHttpStatus, codeToString } from "./connect-codes.js";
import type { Downstream } from "./downstream.js";

/** An error the proxy itself answers with. */
export interface ProxyError {
  code: Code;
  message: string;
}

/** What to send back for an error: status, headers, and an optional body. */
export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body?: Buffer;
}

/**
 * An error response in the client's protocol: a gRPC trailers-only
 * response, a Connect unary JSON error, or a Connect end-of-stream message.
 * `contentType` is the request's (gRPC and Connect streams echo it).
 */
export function errorResponse(
  protocol: CallProtocol | undefined,
  contentType: string | undefined,
  error: ProxyError,
): ErrorResponse {
  const name = codeToString(error.code);
  switch (protocol) {
    case "grpc":
    case "grpc-web":
      return {
        status: 200,
        headers: {
          "content-type": contentType ?? (protocol === "grpc" ? "application/grpc" : "application/grpc-web+proto"),
          "grpc-status": String(error.code),
          "grpc-message": encodeGrpcMessage(error.message),
        },
      };
    case "connect-stream": {
      const json = Buffer.from(JSON.stringify({ error: { code: name, message: error.message } }));
      const prefix = Buffer.alloc(5);
      prefix[0] = 0b10; // end-of-stream flag
      prefix.writeUInt32BE(json.length, 1);
      return {
        status: 200,
        headers: { "content-type": contentType ?? "application/connect+proto" },
        body: Buffer.concat([prefix, json]),
      };
    }
    default:
      return {
        status: codeToHttpStatus(error.code),
        headers: { "content-type": "application/json" },
        body: Buffer.from(JSON.stringify({ code: name, message: error.message })),
      };
  }
}

/** gRPC's percent-encoding of grpc-message: printable ASCII except '%' stays. */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte);
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * Answers the client with an error in its protocol, wherever the response
 * stands: a whole error response while no headers went out, gRPC trailers
 * once they did, and a reset mid-stream in protocols whose status travels in
 * the body. A request that is none of gRPC, gRPC-web or Connect gets plain
 * text (404 for an unimplemented method, else 415).
 */
export function answerError(
  down: Downstream,
  protocol: CallProtocol | undefined,
  contentType: string | undefined,
  error: ProxyError,
): void {
  if (!down.headersSent()) {
    if (protocol === undefined) {
      down.respond(
        error.code === Code.Unimplemented ? 404 : 415,
        { "content-type": "text/plain; charset=utf-8" },
        false,
        false,
      );
      down.write(Buffer.from(`${error.message}\n`));
      down.end();
    } else {
      const r = errorResponse(protocol, contentType, error);
      down.respond(r.status, r.headers, r.body === undefined, false);
      if (r.body) {
        down.write(r.body);
        down.end();
      }
    }
  } else if (protocol === "grpc" && !down.http1) {
    down.end({ "grpc-status": String(error.code), "grpc-message": encodeGrpcMessage(error.message) });
  } else {
    // Mid-stream in a protocol whose status travels in the body: without
    // decoding messages the proxy cannot append one safely, so it resets.
    down.reset();
  }
}
