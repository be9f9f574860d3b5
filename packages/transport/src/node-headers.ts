import type * as http2 from "node:http2";

/** Header fields as handed to node:http2 (lower-case names; repeated fields as arrays). */
export type NodeHeaders = Record<string, string | string[]>;

function append(target: NodeHeaders, key: string, value: string): void {
  const name = key.toLowerCase();
  const existing = target[name];
  if (existing === undefined) {
    target[name] = value;
  } else if (Array.isArray(existing)) {
    existing.push(value);
  } else {
    target[name] = [existing, value];
  }
}

/**
 * Copies call metadata (any HeadersInit: Headers, [name, value] pairs or a record) into node:http2
 * header fields. Repeated names stay repeated fields; `-bin` values are passed through as given
 * (base64, as Connect's encodeBinaryHeader produces).
 */
export function appendHeadersInit(target: NodeHeaders, init: HeadersInit): void {
  if (Array.isArray(init)) {
    for (const [key, value] of init) append(target, key, value);
  } else if (typeof (init as Headers).forEach === "function") {
    (init as Headers).forEach((value, key) => {
      append(target, key, value);
    });
  } else {
    for (const key of Object.keys(init)) append(target, key, (init as Record<string, string>)[key]!);
  }
}

/** Web Headers from node:http2 header fields, pseudo-headers left out. Built only when asked for. */
export function nodeToWebHeaders(fields: http2.IncomingHttpHeaders | undefined): Headers {
  const headers = new Headers();
  if (fields === undefined) return headers;
  for (const key of Object.keys(fields)) {
    if (key.charCodeAt(0) === 58 /* ":" */) continue;
    const value = fields[key];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      for (const v of value) headers.append(key, v);
    } else {
      headers.append(key, String(value));
    }
  }
  return headers;
}
