import type * as http2 from "node:http2";

/** Where the lean transport's responses keep their header fields as node:http2 gave them. */
export const rawFields = Symbol("meshlite.rawFields");

/** The raw header fields of a response: its headers, and its trailers once they came. */
export interface RawFields {
  readonly headers: http2.IncomingHttpHeaders | undefined;
  readonly trailers: http2.IncomingHttpHeaders | undefined;
}

/**
 * A response's header (`part` "header") or trailer field by lowercase name;
 * undefined when absent. The lean transport's responses build their
 * `Headers` only when asked for, so the field is read from the raw fields
 * there, at no cost for a response without it; other responses are asked
 * through `Headers.get`.
 */
export function responseField(
  response: { readonly header: Headers; readonly trailer: Headers },
  part: "header" | "trailer",
  name: string,
): string | string[] | undefined {
  const raw = (response as { [rawFields]?: RawFields })[rawFields];
  if (raw !== undefined) {
    const fields = part === "header" ? raw.headers : raw.trailers;
    const value = fields?.[name];
    return value === undefined ? undefined : typeof value === "string" || Array.isArray(value) ? value : String(value);
  }
  return (part === "header" ? response.header : response.trailer).get(name) ?? undefined;
}
