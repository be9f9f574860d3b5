import { createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { createServerLoad, recordOnGrpcJsCall } from "@meshlite/orca";
import { type Balancer, createChannel, type PickCandidate, type ServerLoad, silentLogger } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import {
  type EchoRequest,
  type EchoResponse,
  EchoResponseSchema,
  EchoService,
} from "../gen/meshlite/echo/v1/echo_pb.js";
import { echoMethod } from "./support/grpc-js-backend.js";
import { waitFor } from "./support/wait-for.js";

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

/** A balancer that takes the first candidate and keeps the server loads it saw at each pick. */
function watching(): Balancer & { seen: Array<ServerLoad | undefined> } {
  const b = {
    name: "watching",
    seen: [] as Array<ServerLoad | undefined>,
    pick(candidates: readonly PickCandidate[]) {
      b.seen.push(candidates[0]?.load.serverLoad);
      return candidates[0];
    },
  };
  return b;
}

/** Fixed metrics, recorded with grpc-js's per-call recorder. */
function recordFixed(recorder: ReturnType<grpc.ServerUnaryCall<EchoRequest, EchoResponse>["getMetricsRecorder"]>) {
  recorder.recordCPUUtilizationMetric(0.25);
  recorder.recordApplicationUtilizationMetric(0.6);
  recorder.recordMemoryUtilizationMetric(0.3);
  recorder.recordQpsMetric(40);
  recorder.recordEpsMetric(2);
  recorder.recordNamedMetric("queue", 3);
  recorder.recordRequestCostMetric("db", 1.5);
  recorder.recordUtilizationMetric("gpu", 0.1);
}

/** A grpc-js server whose Echo records ORCA metrics on each call with grpc-js's own per-call recorder. */
async function startRecordingGrpcJs(
  host: string,
  record: (
    recorder: ReturnType<grpc.ServerUnaryCall<EchoRequest, EchoResponse>["getMetricsRecorder"]>,
  ) => void = recordFixed,
): Promise<string> {
  // grpc-js sends the recorded metrics only with this server option.
  const server = new grpc.Server({ "grpc.server_call_metric_recording": 1 });
  const handler: grpc.handleUnaryCall<EchoRequest, EchoResponse> = (call, callback) => {
    record(call.getMetricsRecorder());
    callback(null, {
      $typeName: EchoResponseSchema.typeName,
      message: call.request.message,
      server: host,
      index: 0,
      payload: new Uint8Array(),
    });
  };
  server.addService(
    { Echo: echoMethod(`/${EchoService.typeName}/${EchoService.method.echo.name}`) } as grpc.ServiceDefinition,
    { Echo: handler },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  closers.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
  return `${host}:${port}`;
}

describe("ORCA load reports read by the channel", () => {
  it("turns grpc-js's per-call metric recorder's trailer into the endpoint's serverLoad", async () => {
    const address = await startRecordingGrpcJs("127.0.16.31");
    const balancer = watching();
    await using channel = createChannel({ target: `static:///${address}`, balancer, logger: silentLogger });
    const client = createClient(EchoService, channel);
    const before = performance.now();
    await client.echo({ message: "first" });
    await client.echo({ message: "second" });
    // The first pick saw no report yet; the next one saw the first call's.
    expect(balancer.seen[0]).toBeUndefined();
    const load = balancer.seen[1];
    expect(load?.report).toMatchObject({
      cpuUtilization: 0.25,
      applicationUtilization: 0.6,
      memUtilization: 0.3,
      rpsFractional: 40,
      eps: 2,
      namedMetrics: { queue: 3 },
      requestCost: { db: 1.5 },
      utilization: { gpu: 0.1 },
    });
    expect(load?.receivedAt).toBeGreaterThan(before);
  });

  it("reads what @meshlite/orca's recordOnGrpcJsCall writes to a grpc-js call's recorder", async () => {
    const load = createServerLoad({ metrics: () => ({ namedMetrics: { from: 1 } }) });
    const address = await startRecordingGrpcJs("127.0.16.33", (recorder) => {
      load.callEnded(true);
      recordOnGrpcJsCall(load.report(), recorder);
    });
    const balancer = watching();
    await using channel = createChannel({ target: `static:///${address}`, balancer, logger: silentLogger });
    const client = createClient(EchoService, channel);
    await client.echo({ message: "first" });
    await client.echo({ message: "second" });
    const report = balancer.seen[1]?.report;
    expect(report?.namedMetrics).toEqual({ from: 1 });
    expect(report?.memUtilization).toBeGreaterThan(0);
    expect(report?.rpsFractional).toBeGreaterThan(0);
  });

  it("reads out-of-band reports from grpc-js's ServerMetricRecorder (StreamCoreMetrics) with outOfBandLoadReports", async () => {
    const server = new grpc.Server();
    const recorder = new grpc.ServerMetricRecorder();
    recorder.setApplicationUtilizationMetric(0.35);
    recorder.setQpsMetric(12);
    recorder.putUtilizationMetric("disk", 0.5);
    recorder.addToServer(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.16.32:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    closers.push(() => new Promise<void>((resolve) => server.tryShutdown(() => resolve())));
    const balancer = watching();
    await using channel = createChannel({
      target: `static:///127.0.16.32:${port}`,
      balancer,
      outOfBandLoadReports: { intervalMs: 100 },
      logger: silentLogger,
    });
    // The stream opens when the endpoint is ready, without calls. A call's pick shows what arrived
    // (the server has no EchoService: the call fails, after the pick).
    const client = createClient(EchoService, channel);
    const loadAtPick = async () => {
      await client.echo({ message: "x" }).catch(() => {});
      return balancer.seen.at(-1);
    };
    const first = await waitFor("an out-of-band report", loadAtPick);
    expect(first.report).toMatchObject({ applicationUtilization: 0.35, rpsFractional: 12, utilization: { disk: 0.5 } });
    recorder.setApplicationUtilizationMetric(0.8);
    await waitFor("the next report", async () => (await loadAtPick())?.report.applicationUtilization === 0.8);
  });

  it("rejects an out-of-band interval below 100 ms", () => {
    expect(() => createChannel({ target: "static:///127.0.0.1:1", outOfBandLoadReports: { intervalMs: 10 } })).toThrow(
      "createChannel: outOfBandLoadReports.intervalMs must be a number >= 100, got 10",
    );
  });
});
