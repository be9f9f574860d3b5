import { describe, expect, it } from "vitest";
import { readRequestHead } from "../src/h2/request-headers.js";

const base = [":method", "POST", ":scheme", "http", ":path", "/pkg.S/M", ":authority", "svc:80"];

describe("readRequestHead", () => {
  it("reads pseudo-headers, joins repeated fields as node:http2 does, and counts the list", () => {
    const head = readRequestHead([
      ...base,
      "content-type",
      "application/grpc",
      "x-tag",
      "a",
      "x-tag",
      "b",
      "cookie",
      "c=1",
      "cookie",
      "d=2",
    ]);
    if (typeof head === "string") throw new Error(head);
    expect(head).toMatchObject({ method: "POST", path: "/pkg.S/M", authority: "svc:80", pairs: 9 });
    expect(head.headers).toEqual({ "content-type": "application/grpc", "x-tag": "a, b", cookie: "c=1; d=2" });
    expect(head.bytes).toBe(
      [...base, "content-type", "application/grpc", "x-tag", "a", "x-tag", "b", "cookie", "c=1", "cookie", "d=2"]
        .map((s) => s.length)
        .reduce((a, b) => a + b, 0) +
        32 * 9,
    );
  });

  it("takes the authority from host when :authority is missing", () => {
    const head = readRequestHead([":method", "GET", ":scheme", "http", ":path", "/x", "host", "h:1"]);
    expect(typeof head !== "string" && head.authority).toBe("h:1");
  });

  it.each([
    [[...base, "Content-Type", "x"], "not lower-case"],
    [[...base, "connection", "close"], "connection-specific"],
    [[...base, "te", "gzip"], "te"],
    [["content-type", "x", ...base], "after a regular field"],
    [[...base, ":method", "GET"], "repeated :method"],
    [[...base, ":protocol", "websocket"], "unknown pseudo-header"],
    [[":scheme", "http", ":path", "/"], "no :method"],
    [[":method", "CONNECT", ":authority", "x:1"], "CONNECT"],
    [[":method", "POST", ":scheme", "http"], "no :scheme or :path"],
  ])("finds %j malformed", (fields, reason) => {
    expect(readRequestHead(fields)).toContain(reason);
  });
});
