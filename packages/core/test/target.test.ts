import { describe, expect, it } from "vitest";
import { parseTarget, TargetError } from "../src/index.js";

describe("parseTarget", () => {
  it.each([
    [
      "dns:///orders.shop.svc.cluster.local:50051",
      { scheme: "dns", host: "orders.shop.svc.cluster.local", port: 50051 },
    ],
    ["dns:///orders:50051", { scheme: "dns", host: "orders", port: 50051, authority: "orders:50051" }],
    ["dns:///orders", { scheme: "dns", host: "orders", port: 443 }],
    ["dns:orders:8080", { scheme: "dns", host: "orders", port: 8080 }],
    ["orders.shop:50051", { scheme: "dns", host: "orders.shop", port: 50051 }],
    ["localhost:50051", { scheme: "dns", host: "localhost", port: 50051 }],
    ["orders", { scheme: "dns", host: "orders", port: 443 }],
    ["127.0.0.1:9000", { scheme: "dns", host: "127.0.0.1", port: 9000 }],
    ["[::1]:9000", { scheme: "dns", host: "::1", port: 9000, authority: "[::1]:9000" }],
    [
      "dns://10.0.0.10:5353/orders.shop:50051",
      { scheme: "dns", host: "orders.shop", port: 50051, dnsServer: { host: "10.0.0.10", port: 5353 } },
    ],
    ["dns://10.0.0.10/orders:1", { scheme: "dns", dnsServer: { host: "10.0.0.10", port: 53 } }],
    ["dns://[::1]:53/orders:1", { scheme: "dns", dnsServer: { host: "::1", port: 53 } }],
    [
      "static:///10.0.0.1:50051,10.0.0.2:50051",
      {
        scheme: "static",
        form: "static",
        addresses: [
          { host: "10.0.0.1", port: 50051 },
          { host: "10.0.0.2", port: 50051 },
        ],
        authority: "10.0.0.1:50051",
      },
    ],
    [
      "static:///a.example:1, b.example:2",
      {
        addresses: [
          { host: "a.example", port: 1 },
          { host: "b.example", port: 2 },
        ],
      },
    ],
    [
      "static:///a:1,a:1,b:2",
      {
        addresses: [
          { host: "a", port: 1 },
          { host: "b", port: 2 },
        ],
      },
    ],
    [
      "ipv4:10.0.0.1:1,10.0.0.2:2",
      {
        scheme: "static",
        form: "ipv4",
        addresses: [
          { host: "10.0.0.1", port: 1 },
          { host: "10.0.0.2", port: 2 },
        ],
      },
    ],
    [
      "ipv6:[::1]:1,[fe80::2]:2",
      {
        form: "ipv6",
        addresses: [
          { host: "::1", port: 1 },
          { host: "fe80::2", port: 2 },
        ],
      },
    ],
    ["ipv6:::1", { form: "ipv6", addresses: [{ host: "::1", port: 443 }] }],
    [
      "k8s:///orders.shop:50051",
      { scheme: "k8s", service: "orders", namespace: "shop", port: 50051, authority: "orders.shop.svc:50051" },
    ],
    [
      "k8s:///orders.shop:grpc",
      { scheme: "k8s", service: "orders", namespace: "shop", port: "grpc", authority: "orders.shop.svc" },
    ],
    ["kubernetes:///orders:grpc", { scheme: "k8s", service: "orders", port: "grpc" }],
    ["k8s:///orders.shop.svc.cluster.local:80", { scheme: "k8s", service: "orders", namespace: "shop", port: 80 }],
  ])("parses %s", (raw, expected) => {
    expect(parseTarget(raw)).toMatchObject({ raw, ...expected });
  });

  it.each([
    ["", "empty"],
    ["   ", "empty"],
    ["dns:///", "host is empty"],
    ["dns:///orders:0", "out of range"],
    ["dns:///orders:70000", "out of range"],
    ["dns:///orders:http", "not a number"],
    ["dns://orders/orders:1", "must be an IP address"],
    ["dns://10.0.0.1", '"/" before the host is missing'],
    ["dns:///bad_host!:1", "not a valid host name"],
    ["foo://bar/baz", 'unknown scheme "foo:"'],
    ["unix:///tmp/sock", "not supported"],
    ["static:///", "list is empty"],
    ["static:///a:1,,b:2", "empty entry"],
    ["static://x/a:1", "takes no authority"],
    ["ipv4:orders:1", "not an IPv4 address"],
    ["ipv6:10.0.0.1:1", "not an IPv6 address"],
    ["ipv6:[::1", 'no closing "]"'],
    ["ipv6:[10.0.0.1]:1", "not an IPv6 address"],
    ["k8s:///orders.shop", "port is missing"],
    ["k8s:///Orders.shop:80", "not a valid name"],
    ["k8s:///a.b.c:80", "service or service.namespace"],
    ["k8s:///orders:Grpc_Port", "neither a port number nor a port name"],
  ])("rejects %j (%s)", (raw, problem) => {
    let error: unknown;
    try {
      parseTarget(raw);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TargetError);
    const message = (error as Error).message;
    expect(message).toContain(problem);
    expect(message).toContain(`"${raw}"`);
    // Every error shows the accepted forms.
    expect(message).toContain("dns:///host:port");
    expect(message).toContain("k8s:///service.namespace:port");
  });
});
