import { fromBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createOrcaInterceptor, createServerLoad } from "@meshlite/orca";
import {
  type Balancer,
  createChannel,
  type PickCandidate,
  type Protocol,
  type ServerLoad,
  silentLogger,
} from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { OrcaLoadReportSchema } from "../src/gen/xds/data/orca/v3/orca_load_report_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";

let backends: EchoBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

/** A balancer that takes the first candidate and lets the test read its server load. */
function watching(): Balancer & { load(): ServerLoad | undefined } {
  let seen: readonly PickCandidate[] = [];
  return {
    name: "watching",
    pick(candidates) {
      seen = candidates;
      return candidates[0];
    },
    load: () => seen[0]?.load.serverLoad,
  };
}

describe("createOrcaInterceptor on a connect-node server", () => {
  it("sends a report that the generated OrcaLoadReport type parses, with utilization, memory and qps", async () => {
    const backend = await startEchoBackend({ host: "127.0.16.41", interceptors: [createOrcaInterceptor()] });
    backends.push(backend);
    const client = createClient(EchoService, createGrpcTransport({ baseUrl: `http://${backend.address}` }));
    let trailer: Headers | undefined;
    for (let i = 0; i < 5; i++) await client.echo({ message: "x" }, { onTrailer: (t) => (trailer = t) });
    const value = trailer?.get("endpoint-load-metrics-bin");
    expect(value).toBeTruthy();
    const report = fromBinary(OrcaLoadReportSchema, Buffer.from(value as string, "base64"));
    expect(report.memUtilization).toBeGreaterThan(0);
    expect(report.memUtilization).toBeLessThanOrEqual(1);
    expect(report.applicationUtilization).toBeGreaterThan(0);
    expect(report.applicationUtilization).toBeLessThanOrEqual(1);
    expect(report.cpuUtilization).toBeGreaterThan(0);
    expect(report.rpsFractional).toBeGreaterThan(0);
    expect(report.eps).toBe(0);
  });

  it.each<[Protocol, "trailer" | "header"]>([
    ["grpc", "trailer"],
    ["connect", "trailer"],
    ["grpc-web", "trailer"],
    ["connect", "header"],
    ["grpc", "header"],
  ])("reaches a meshlite channel over %s in the %s form, for unary and streaming calls", async (protocol, form) => {
    const backend = await startEchoBackend({
      host: "127.0.16.42",
      interceptors: [createOrcaInterceptor({ form, loadOptions: { metrics: () => ({ namedMetrics: { queue: 4 } }) } })],
    });
    backends.push(backend);
    const balancer = watching();
    await using channel = createChannel({
      target: `static:///${backend.address}`,
      protocol,
      balancer,
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    await client.echo({ message: "x" });
    await client.echo({ message: "x" });
    const unary = balancer.load();
    expect(unary?.report.namedMetrics).toEqual({ queue: 4 });
    expect(unary?.report.memUtilization).toBeGreaterThan(0);
    for await (const _ of client.serverStream({ message: "s", count: 2 })) {
      // read to the end: the trailer comes after the messages
    }
    expect(balancer.load()?.receivedAt).toBeGreaterThan(unary?.receivedAt as number);
  });

  it("counts failed calls as errors per second, and reports on the failures too", async () => {
    const backend = await startEchoBackend({ host: "127.0.16.43", interceptors: [createOrcaInterceptor()] });
    backends.push(backend);
    backend.setFailCode(13);
    const balancer = watching();
    await using channel = createChannel({
      target: `static:///${backend.address}`,
      balancer,
      outlierDetection: false,
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    for (let i = 0; i < 3; i++) await client.echo({ message: "x" }).catch(() => {});
    await client.echo({ message: "x" }).catch(() => {});
    expect(balancer.load()?.report.eps).toBeGreaterThan(0);
  });
});

describe("createServerLoad", () => {
  it("reports event-loop utilization where CPU percent misleads: a busy loop under a 4-CPU limit", async () => {
    const load = createServerLoad({ sampleIntervalMs: 200, cpuLimit: 4 });
    load.report();
    // Keep the event loop busy for 300 ms (a synchronous handler, a big JSON.parse).
    await new Promise<void>((resolve) =>
      setTimeout(() => {
        const until = performance.now() + 300;
        while (performance.now() < until) {
          // busy
        }
        resolve();
      }, 0),
    );
    const report = load.report();
    expect(report.applicationUtilization).toBeGreaterThan(0.6);
    // One core of four: CPU reads about a quarter.
    expect(report.cpuUtilization).toBeLessThan(0.4);
  });

  it("rejects bad options with what is accepted", () => {
    expect(() => createServerLoad({ sampleIntervalMs: 0 })).toThrow(
      "createServerLoad: sampleIntervalMs must be a number > 0, got 0",
    );
    expect(() => createServerLoad({ applicationUtilization: "cpu" as never })).toThrow(
      'createServerLoad: applicationUtilization must be "event-loop" or "none", got "cpu"',
    );
    expect(() => createServerLoad({ sampleInterval: 5 } as never)).toThrow(
      'createServerLoad: unknown key "sampleInterval" (did you mean "sampleIntervalMs"?)',
    );
    expect(() => createOrcaInterceptor({ form: "json" as never })).toThrow(
      'createOrcaInterceptor: form must be "trailer" or "header", got "json"',
    );
    expect(() => createOrcaInterceptor({ load: createServerLoad(), loadOptions: {} })).toThrow(
      "give either load or loadOptions, not both",
    );
  });
});
