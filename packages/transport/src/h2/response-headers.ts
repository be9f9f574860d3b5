import type { H2Headers } from "../h2-stream.js";

// Connection-specific fields make a response malformed (RFC 9113 section 8.2.2).
const connectionSpecific = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);

/**
 * Reads a decoded response header block ([name, value, ...]) into a header
 * object as node:http2 gives one: a null prototype, lower-case names,
 * `:status` as a number; `set-cookie` always an array, any other repeated
 * name an array of its values in order (node:http2 joins them with ", ": a
 * proxy re-sends them as they came). Malformed (RFC 9113 section 8.3.2): an
 * upper-case name, a pseudo-header other than one :status, or after a
 * regular field, a :status that is not three digits, a connection-specific
 * field. Returns the reason as a string then: the stream is reset with
 * PROTOCOL_ERROR. A 1xx status is returned like any other: the caller skips
 * informational responses.
 */
export function readResponseHead(fields: readonly string[]): H2Headers | string {
  return readBlock(fields, true);
}

/** Reads a trailer block the same way: no pseudo-header at all. */
export function readTrailers(fields: readonly string[]): H2Headers | string {
  return readBlock(fields, false);
}

function readBlock(fields: readonly string[], response: boolean): H2Headers | string {
  const headers = Object.create(null) as Record<string, string | string[] | number>;
  let status = -1;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    for (let c = 0; c < name.length; c++) {
      const code = name.charCodeAt(c);
      if (code >= 65 && code <= 90) return `header name ${JSON.stringify(name)} is not lower-case`;
    }
    if (name.charCodeAt(0) === 58 /* ':' */) {
      if (!response) return `pseudo-header ${name} in trailers`;
      if (name !== ":status") return `pseudo-header ${name} in a response`;
      if (status !== -1) return "repeated :status";
      if (i !== 0) return ":status after a regular field";
      status = parseStatus(value);
      if (status < 0) return `:status ${JSON.stringify(value)} is not three digits`;
      headers[":status"] = status;
      continue;
    }
    if (connectionSpecific.has(name)) return `connection-specific field ${name}`;
    const existing = headers[name];
    if (existing === undefined) headers[name] = name === "set-cookie" ? [value] : value;
    else if (typeof existing === "string") headers[name] = [existing, value];
    else (existing as string[]).push(value);
  }
  if (response && status === -1) return "no :status";
  return headers as H2Headers;
}

function parseStatus(value: string): number {
  if (value.length !== 3) return -1;
  let n = 0;
  for (let i = 0; i < 3; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
