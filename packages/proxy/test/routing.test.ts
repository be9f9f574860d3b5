import { describe, expect, it } from "vitest";
import { detectProtocol, parseTimeout, timeoutHeader } from "../src/call-protocol.js";
import { createEnvelopeMeter } from "../src/envelope-meter.js";
import { errorResponse } from "../src/error-answer.js";
import { parseConfig } from "../src/load-config.js";
import type { RouteOptions } from "../src/proxy-options.js";
import { resolveEngine, validateProxyOptions } from "../src/proxy-options.js";
import { createRouter } from "../src/router.js";

const entries = (routes: RouteOptions[]) => routes.map((route) => ({ route, name: route.name }));

describe("router", () => {
  const router = createRouter(
    entries([
      { name: "orders", service: "shop.v1.Orders", target: "static:///10.0.0.1:1" },
      { name: "users-8443", authority: "users.internal:8443", target: "static:///10.0.0.2:1" },
      { name: "users", authority: "users.internal", target: "static:///10.0.0.3:1" },
      { name: "both", authority: "api.example", service: "shop.v1.Cart", target: "static:///10.0.0.4:1" },
    ]),
  );
  it("matches by service, by authority with or without port, and by both", () => {
    expect(router.match("anything:80", "shop.v1.Orders")?.name).toBe("orders");
    expect(router.match("users.internal:8443", "x.Y")?.name).toBe("users-8443");
    expect(router.match("USERS.internal:9000", "x.Y")?.name).toBe("users");
    expect(router.match("users.internal", "x.Y")?.name).toBe("users");
    expect(router.match("api.example:443", "shop.v1.Cart")?.name).toBe("both");
    expect(router.match("api.example:443", "shop.v1.Other")).toBeUndefined();
    expect(router.match(undefined, "x.Y")).toBeUndefined();
  });
  it("describes its keys for errors", () => {
    expect(router.describe()).toContain("{authority: *, service: shop.v1.Orders}");
    expect(router.describe()).toContain("{authority: api.example, service: shop.v1.Cart}");
  });
});

describe("config", () => {
  it("accepts routes, listeners and limits", () => {
    const config = parseConfig(
      {
        listen: "0.0.0.0:8080",
        admin: ":9901",
        logLevel: "debug",
        maxMessageBytes: 1024,
        routes: [{ service: "a.B", target: "dns:///a.default.svc.cluster.local:50051", balancer: "least-request" }],
      },
      "/",
    );
    expect(config).toMatchObject({ listen: "0.0.0.0:8080", admin: ":9901", logLevel: "debug" });
    expect(config.options.maxMessageBytes).toBe(1024);
  });
  it.each([
    [{}, "routes must be a non-empty list"],
    [{ routes: [] }, "routes must be a non-empty list"],
    [{ routes: [{ service: "a.B" }] }, "routes[0].target: required"],
    [{ routes: [{ target: "ftp://x" }] }, 'routes[0].target: invalid target "ftp://x"'],
    [{ routes: [{ target: "static:///1.2.3.4:5", balancer: "fast" }] }, 'routes[0].balancer: unknown balancer "fast"'],
    [{ routes: [{ target: "static:///1.2.3.4:5", service: "/a.B/" }] }, "routes[0].service: a gRPC service name"],
    [{ routes: [{ target: "static:///1.2.3.4:5" }], lisen: ":1" }, 'unknown key "lisen"'],
    [{ routes: [{ target: "static:///1.2.3.4:5" }], listen: "8080" }, 'listen address "8080" is not valid'],
    [
      { routes: [{ target: "static:///1.2.3.4:5" }], maxHeaderBytes: -1 },
      "maxHeaderBytes must be a non-negative integer",
    ],
    [{ routes: [{ target: "static:///1.2.3.4:5" }], tls: { cert: "c.pem" } }, "tls: expected { cert: FILE, key: FILE"],
    [
      { routes: [{ target: "static:///1.2.3.4:5" }], engine: "nghttp2" },
      'engine: expected one of streams, frames, got "nghttp2"',
    ],
    [[1, 2], "expected a mapping"],
  ])("rejects %j with a clear message", (doc, message) => {
    expect(() => parseConfig(doc, "/")).toThrow(message);
  });
});

describe("proxy options", () => {
  const routes = [{ target: "static:///1.2.3.4:5" }];
  it.each([
    [{ routes, maxInflight: 5 }, 'proxy: unknown key "maxInflight" (did you mean "maxInFlight"?)'],
    [
      { routes: [{ target: "static:///1.2.3.4:5", balancr: "p2c" }] },
      'routes[0]: unknown key "balancr" (did you mean "balancer"?)',
    ],
    [
      { routes: [{ target: "static:///1.2.3.4:5", outlierDetection: { maxEjectionPercent: "half" } }] },
      "routes[0].outlierDetection.maxEjectionPercent must be a non-negative number",
    ],
    [
      { routes: [{ target: "static:///1.2.3.4:5", keepalive: { intervalMs: 0 } }] },
      "routes[0].keepalive.intervalMs: a positive number of milliseconds, got 0",
    ],
    [
      { routes: [{ target: "static:///1.2.3.4:5", keepalive: { intervalMs: 1000, timeout: 5 } }] },
      'routes[0].keepalive: unknown key "timeout" (did you mean "timeoutMs"?)',
    ],
    [{ routes, streamIdleTimeoutMs: -1 }, "proxy: streamIdleTimeoutMs must be a non-negative integer, got -1"],
    [{ routes, engine: "frame" }, 'proxy: unknown engine "frame"; expected one of "streams", "frames"'],
  ])("rejects %j naming the key and the nearest known one", (options, message) => {
    expect(() => validateProxyOptions(options as never)).toThrow(message);
  });
  it("takes the engine from the options, else MESHLITE_PROXY_ENGINE, else frames", () => {
    const saved = process.env.MESHLITE_PROXY_ENGINE;
    try {
      delete process.env.MESHLITE_PROXY_ENGINE;
      expect(resolveEngine({ routes })).toBe("frames");
      process.env.MESHLITE_PROXY_ENGINE = "streams";
      expect(resolveEngine({ routes })).toBe("streams");
      expect(resolveEngine({ routes, engine: "frames" })).toBe("frames");
      process.env.MESHLITE_PROXY_ENGINE = "fast";
      expect(() => resolveEngine({ routes })).toThrow('MESHLITE_PROXY_ENGINE="fast" is not an engine');
    } finally {
      if (saved === undefined) delete process.env.MESHLITE_PROXY_ENGINE;
      else process.env.MESHLITE_PROXY_ENGINE = saved;
    }
    expect(parseConfig({ engine: "streams", routes }, "/").options.engine).toBe("streams");
  });
});

describe("protocol", () => {
  it("tells the protocols apart by content type", () => {
    expect(detectProtocol("POST", "application/grpc")).toBe("grpc");
    expect(detectProtocol("POST", "application/grpc+proto")).toBe("grpc");
    expect(detectProtocol("POST", "application/grpc-web+proto")).toBe("grpc-web");
    expect(detectProtocol("POST", "application/connect+json")).toBe("connect-stream");
    expect(detectProtocol("POST", "application/proto")).toBe("connect-unary");
    expect(detectProtocol("GET", undefined)).toBe("connect-unary");
    expect(detectProtocol("POST", "text/html")).toBeUndefined();
  });
  it("parses timeouts", () => {
    expect(parseTimeout("grpc", { "grpc-timeout": "2S" })).toBe(2000);
    expect(parseTimeout("grpc", { "grpc-timeout": "1500m" })).toBe(1500);
    expect(parseTimeout("grpc", { "grpc-timeout": "1H" })).toBe(3_600_000);
    expect(parseTimeout("grpc", { "grpc-timeout": "1x" })).toBeNaN();
    expect(parseTimeout("connect-unary", { "connect-timeout-ms": "250" })).toBe(250);
    expect(parseTimeout("connect-unary", {})).toBeUndefined();
  });
  it("passes long deadlines on as valid grpc-timeout headers (at most 8 digits)", () => {
    const day = 24 * 3_600_000;
    // Up to 99999999 ms (27.8 h) in milliseconds; beyond, in a coarser unit, rounded up.
    expect(timeoutHeader("grpc", 99_999_999)).toEqual(["grpc-timeout", "99999999m"]);
    expect(timeoutHeader("grpc", 2 * day)).toEqual(["grpc-timeout", "172800S"]);
    expect(timeoutHeader("grpc-web", 400 * day)).toEqual(["grpc-timeout", "34560000S"]);
    expect(timeoutHeader("grpc", 4000 * day)).toEqual(["grpc-timeout", "5760000M"]);
    for (const ms of [1.5, 1000, 99_999_999, 2 * day, 400 * day, 1e15]) {
      const [name, value] = timeoutHeader("grpc", ms);
      expect(value).toMatch(/^\d{1,8}[HMSmun]$/);
      expect(parseTimeout("grpc", { [name]: value })).toBeGreaterThanOrEqual(Math.min(ms, 99_999_999 * 3_600_000));
    }
    expect(timeoutHeader("connect-unary", 2 * day)).toEqual(["connect-timeout-ms", "172800000"]);
  });
  it("writes errors in each protocol", () => {
    const grpc = errorResponse("grpc", "application/grpc", { code: 14, message: "down 100%" });
    expect(grpc.headers).toMatchObject({ "grpc-status": "14", "grpc-message": "down 100%25" });
    const unary = errorResponse("connect-unary", "application/proto", { code: 12, message: "no route" });
    expect(unary.status).toBe(501);
    expect(JSON.parse(unary.body!.toString())).toEqual({ code: "unimplemented", message: "no route" });
    const stream = errorResponse("connect-stream", "application/connect+proto", { code: 4, message: "late" });
    expect(stream.body![0]).toBe(2);
    expect(JSON.parse(stream.body!.subarray(5).toString())).toEqual({
      error: { code: "deadline_exceeded", message: "late" },
    });
  });
});

describe("envelope meter", () => {
  const envelope = (n: number) => {
    const b = Buffer.alloc(5 + n);
    b.writeUInt32BE(n, 1);
    return b;
  };
  it("finds a message over the limit across chunk boundaries", () => {
    const meter = createEnvelopeMeter(100);
    const stream = Buffer.concat([envelope(100), envelope(3), envelope(101)]);
    expect(meter.push(stream.subarray(0, 2))).toBe(-1);
    expect(meter.push(stream.subarray(2, 110))).toBe(-1);
    expect(meter.push(stream.subarray(110, 115))).toBe(-1);
    expect(meter.push(stream.subarray(115, 116))).toBe(-1);
    expect(meter.push(stream.subarray(116))).toBe(101);
  });
});
