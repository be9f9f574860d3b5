import type * as http from "node:http";

/** A request's header block (RFC 9113 section 8.3.1), as a Downstream needs it. */
export interface RequestHead {
  method: string;
  path: string;
  authority: string | undefined;
  /** Regular fields; a repeated name is joined as node:http2 does (cookie with "; ", others with ", "). */
  headers: http.IncomingHttpHeaders;
  /** name + value + 32 per field, pseudo-headers included (RFC 9113 section 6.5.2). */
  bytes: number;
  /** Fields, pseudo-headers included. */
  pairs: number;
}

// Connection-specific fields make a request malformed (RFC 9113 section 8.2.2).
const connectionSpecific = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

/**
 * Reads a decoded request header block ([name, value, ...]) and checks what
 * makes it malformed: upper-case names, unknown or repeated pseudo-headers, a
 * pseudo-header after a regular field, connection-specific fields, `te` other
 * than "trailers", and a missing :method, :scheme or :path (CONNECT is not
 * forwarded). Returns the reason as a string when malformed: the stream is
 * then reset with PROTOCOL_ERROR.
 */
export function readRequestHead(fields: readonly string[]): RequestHead | string {
  let method: string | undefined;
  let path: string | undefined;
  let scheme: string | undefined;
  let authority: string | undefined;
  const headers: http.IncomingHttpHeaders = {};
  let bytes = 0;
  let regular = false;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    bytes += name.length + value.length + 32;
    for (let c = 0; c < name.length; c++) {
      const code = name.charCodeAt(c);
      if (code >= 65 && code <= 90) return `header name ${JSON.stringify(name)} is not lower-case`;
    }
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (regular) return `pseudo-header ${name} after a regular field`;
      switch (name) {
        case ":method":
          if (method !== undefined) return "repeated :method";
          method = value;
          break;
        case ":path":
          if (path !== undefined) return "repeated :path";
          path = value;
          break;
        case ":scheme":
          if (scheme !== undefined) return "repeated :scheme";
          scheme = value;
          break;
        case ":authority":
          if (authority !== undefined) return "repeated :authority";
          authority = value;
          break;
        default:
          return `unknown pseudo-header ${name}`;
      }
      continue;
    }
    regular = true;
    if (connectionSpecific.has(name)) return `connection-specific field ${name}`;
    if (name === "te" && value !== "trailers") return `te: ${JSON.stringify(value)} (only "trailers" is allowed)`;
    const existing = headers[name];
    if (name === "set-cookie") {
      if (existing === undefined) headers[name] = [value];
      else (existing as string[]).push(value);
    } else if (existing === undefined) headers[name] = value;
    else headers[name] = `${existing}${name === "cookie" ? "; " : ", "}${value}`;
  }
  if (method === undefined) return "no :method";
  if (method === "CONNECT") return "CONNECT is not forwarded";
  if (scheme === undefined || path === undefined || path === "") return "no :scheme or :path";
  if (authority === undefined && typeof headers.host === "string") authority = headers.host;
  return { method, path, authority, headers, bytes, pairs: fields.length / 2 };
}
