/** The HPACK static table (RFC 7541 Appendix A); index 1 is entry 0 here. */
export const staticTable: readonly (readonly [name: string, value: string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** Number of static entries (61); dynamic indices start after it. */
export const staticTableLength = staticTable.length;

/** name -> value -> 1-based static index, for the encoder's exact matches (no string joined per lookup). */
export const staticFieldIndex: ReadonlyMap<string, ReadonlyMap<string, number>> = (() => {
  const m = new Map<string, Map<string, number>>();
  staticTable.forEach(([name, value], i) => {
    let byValue = m.get(name);
    if (!byValue) {
      byValue = new Map();
      m.set(name, byValue);
    }
    byValue.set(value, i + 1);
  });
  return m;
})();

/** name -> first 1-based static index with that name, for name-only matches. */
export const staticNameIndex: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  staticTable.forEach(([name], i) => {
    if (!m.has(name)) m.set(name, i + 1);
  });
  return m;
})();
