import * as http2 from "node:http2";

// Never sent (RFC 9113 section 8.2.2); `te` only as "trailers".
const connectionSpecific = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

/**
 * A request's header object (as node:http2's `request()` takes it) as the
 * flat HPACK field list [name, value, ...]: :method (default GET), :scheme
 * and :authority (the defaults given unless the headers have them), :path
 * (default "/") first, then the regular fields with lower-case names, an
 * array as repeated fields, undefined values left out, connection-specific
 * fields dropped, `te` kept only as "trailers".
 */
export function requestFields(headers: http2.OutgoingHttpHeaders, scheme: string, authority: string): string[] {
  const fields = [
    ":method",
    String(headers[":method"] ?? "GET"),
    ":scheme",
    String(headers[":scheme"] ?? scheme),
    ":authority",
    String(headers[":authority"] ?? authority),
    ":path",
    String(headers[":path"] ?? "/"),
  ];
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* ':' */) {
      // :method, :scheme, :authority, :path are above; RFC 8441's :protocol goes through.
      if (name === ":protocol") fields.push(name, String(headers[name]));
      continue;
    }
    const value = headers[name];
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (connectionSpecific.has(lower)) continue;
    if (lower === "te" && value !== "trailers") continue;
    if (Array.isArray(value)) for (const v of value) fields.push(lower, String(v));
    else fields.push(lower, String(value));
  }
  return fields;
}

/**
 * The field numbers (pair index) of the fields node:http2's
 * `headers[http2.sensitiveHeaders]` names, to send as never-indexed
 * literals; undefined when the headers name none (the usual case).
 */
export function sensitiveFields(headers: http2.OutgoingHttpHeaders, fields: readonly string[]): number[] | undefined {
  const names = (headers as Record<symbol, unknown>)[http2.sensitiveHeaders];
  if (!Array.isArray(names) || names.length === 0) return undefined;
  const lower = new Set(names.map((n) => String(n).toLowerCase()));
  const numbers: number[] = [];
  for (let i = 0; i < fields.length; i += 2) if (lower.has(fields[i]!)) numbers.push(i >> 1);
  return numbers;
}
