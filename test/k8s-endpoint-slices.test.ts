import type { IncomingMessage } from "node:http";
import { PassThrough } from "node:stream";
import { type EndpointSlice, mergeSlices } from "@meshlite/resolver-k8s";
import { describe, expect, it } from "vitest";
import { readWatchStream, type WatchEvent } from "../packages/resolver-k8s/src/watch-stream.js";

const slice = (name: string, fields: Partial<EndpointSlice>): EndpointSlice => ({
  metadata: { name },
  addressType: "IPv4",
  ports: [{ name: "grpc", port: 50051, protocol: "TCP" }],
  ...fields,
});

function merge(slices: EndpointSlice[], port: number | string = "grpc") {
  const problems: string[] = [];
  const endpoints = mergeSlices(slices, port, (s, problem) => problems.push(`${s.metadata.name}: ${problem}`));
  return { endpoints, problems };
}

describe("merging EndpointSlices", () => {
  it("follows the conditions: unset means ready, terminating+serving drains, the rest is dropped", () => {
    const { endpoints } = merge([
      slice("a", {
        endpoints: [
          { addresses: ["10.1.0.1"] },
          { addresses: ["10.1.0.2"], conditions: { ready: true } },
          { addresses: ["10.1.0.3"], conditions: { ready: false } },
          { addresses: ["10.1.0.4"], conditions: { ready: false, serving: true, terminating: true } },
          { addresses: ["10.1.0.5"], conditions: { ready: false, terminating: true } }, // serving unset: serving
          { addresses: ["10.1.0.6"], conditions: { ready: false, serving: false, terminating: true } },
          { addresses: [] },
        ],
      }),
    ]);
    expect(endpoints).toEqual([
      { host: "10.1.0.1", port: 50051 },
      { host: "10.1.0.2", port: 50051 },
      { host: "10.1.0.4", port: 50051, draining: true },
      { host: "10.1.0.5", port: 50051, draining: true },
    ]);
  });

  it("de-duplicates across slices, a ready copy winning over a draining one, in slice-name order", () => {
    const { endpoints } = merge([
      slice("b", { endpoints: [{ addresses: ["10.1.0.2"] }, { addresses: ["10.1.0.1"] }] }),
      slice("a", {
        endpoints: [{ addresses: ["10.1.0.1"], conditions: { ready: false, serving: true, terminating: true } }],
      }),
    ]);
    expect(endpoints).toEqual([
      { host: "10.1.0.1", port: 50051 },
      { host: "10.1.0.2", port: 50051 },
    ]);
  });

  it("resolves the port per slice and explains slices it skips", () => {
    const slices = [
      slice("a", { endpoints: [{ addresses: ["10.1.0.1"] }] }),
      slice("b", {
        endpoints: [{ addresses: ["10.1.0.2"] }],
        ports: [
          { name: "grpc", port: 8443, protocol: "UDP" },
          { name: "grpc", port: 50052, protocol: "TCP" },
        ],
      }),
      slice("c", { endpoints: [{ addresses: ["fd00::3"] }], addressType: "IPv6", ports: null }),
    ];
    const byName = merge(slices, "grpc");
    expect(byName.endpoints.map((e) => `${e.host}:${e.port}`)).toEqual(["10.1.0.1:50051", "10.1.0.2:50052"]);
    expect(byName.problems).toEqual(['c: it lists no ports, so the port name "grpc" is unknown']);
    const byNumber = merge(slices, 50051);
    expect(byNumber.endpoints.map((e) => `${e.host}:${e.port}`)).toEqual(["10.1.0.1:50051", "fd00::3:50051"]);
    expect(byNumber.problems).toEqual([
      "b: it has no TCP port 50051 (ports: grpc=50052); a number in a k8s target is the pod's port, not the Service's: write the pod port or the port name",
    ]);
  });

  it("keeps zone and node name", () => {
    const { endpoints } = merge([
      slice("a", { endpoints: [{ addresses: ["10.1.0.1"], zone: "eu-west-1a", nodeName: "node-7" }] }),
    ]);
    expect(endpoints).toEqual([{ host: "10.1.0.1", port: 50051, zone: "eu-west-1a", nodeName: "node-7" }]);
  });

  it("takes the pod name from targetRef as the endpoint's hash key", () => {
    const { endpoints } = merge([
      slice("a", {
        endpoints: [
          { addresses: ["10.1.0.1"], targetRef: { kind: "Pod", name: "orders-7d9f-abcde", namespace: "shop" } },
          { addresses: ["10.1.0.2"] },
        ],
      }),
    ]);
    expect(endpoints).toEqual([
      { host: "10.1.0.1", port: 50051, hashKey: "orders-7d9f-abcde" },
      { host: "10.1.0.2", port: 50051 },
    ]);
  });
});

describe("reading a watch stream", () => {
  it("reassembles events split across chunks, multi-byte characters included", async () => {
    const stream = new PassThrough();
    const events: WatchEvent[] = [];
    const outcome = readWatchStream(stream as unknown as IncomingMessage, 5000, (event) => {
      events.push(event);
      return undefined;
    });
    const text = `${JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: "7" } } })}\n${JSON.stringify(
      { type: "ADDED", object: { metadata: { name: "zoné-€" } } },
    )}\n`;
    const bytes = Buffer.from(text, "utf8");
    // Cut in the middle of the first line and inside the 3-byte "€".
    const euro = bytes.indexOf(Buffer.from("€", "utf8"));
    for (const [from, to] of [
      [0, 10],
      [10, euro + 1],
      [euro + 1, bytes.length],
    ] as const) {
      stream.write(bytes.subarray(from, to));
      await new Promise((resolve) => setImmediate(resolve));
    }
    stream.end();
    expect(await outcome).toEqual({ kind: "ended", delivered: 2 });
    expect(events.map((e) => [e.type, e.object?.metadata?.name ?? e.object?.metadata?.resourceVersion])).toEqual([
      ["BOOKMARK", "7"],
      ["ADDED", "zoné-€"],
    ]);
  });

  it("gives up on a stream that delivers nothing for the idle timeout, and on garbage", async () => {
    const silent = new PassThrough();
    const started = performance.now();
    expect(await readWatchStream(silent as unknown as IncomingMessage, 150, () => undefined)).toEqual({ kind: "idle" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(silent.destroyed).toBe(true);

    const garbage = new PassThrough();
    const outcome = readWatchStream(garbage as unknown as IncomingMessage, 5000, () => undefined);
    garbage.write("<html>proxy error</html>\n");
    const result = await outcome;
    expect(result.kind).toBe("error");
    expect(result.kind === "error" && result.error.message).toMatch(/unparsable watch event: <html>/);
  });
});
