// Client CPU per call and calls/s of the lean gRPC transport (lean-frames: on meshlite's own HTTP/2,
// createFrameEngineConnection, as the channel runs it; lean-node: on meshlite's node:http2
// connection, as the channel ran it before; lean: on connect-node's session manager, the default of
// createLeanGrpcTransport alone), @grpc/grpc-js and connect-node's gRPC transport: unary calls at concurrency 64, each client in its own forked process, slices
// interleaved round by round, median of the rounds. Servers: @grpc/grpc-js (so that the client is
// the limit) and connect-node, both in this process.
//   pnpm bench:lean            (BENCH_ROUNDS, BENCH_CALLS, BENCH_CONCURRENCY to change the load)
import { type ChildProcess, fork } from "node:child_process";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import { EchoResponseSchema } from "../gen/meshlite/echo/v1/echo_pb.js";
import { startEchoBackend } from "../test/support/echo-backend.js";
import { startGrpcJsBackend } from "../test/support/grpc-js-backend.js";
import { median } from "./support/stats.js";

const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const calls = Number(process.env.BENCH_CALLS ?? 4000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const kinds = ["lean-frames", "lean-node", "lean", "grpc-js", "connect-node"] as const;
type Kind = (typeof kinds)[number];
interface Result {
  cpuUsPerCall: number;
  callsPerSec: number;
  /** CPU of this process (the server) per call during the slice: shows whether the server is the limit. */
  serverCpuUsPerCall: number;
}

/**
 * A node:http2 server answering every Echo call with one canned response: it costs far less CPU
 * per call than any client, so here the client is the limit.
 */
async function startCannedServer(): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const body = toBinary(
    EchoResponseSchema,
    create(EchoResponseSchema, { message: "hello, benchmark", server: "canned" }),
  );
  const frame = Buffer.alloc(5 + body.byteLength);
  frame.writeUInt32BE(body.byteLength, 1);
  frame.set(body, 5);
  const server = http2.createServer();
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    stream.on("data", () => {});
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frame);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sessions) s.close();
      }),
  };
}

interface Child {
  proc: ChildProcess;
  run(): Promise<Result>;
}

async function spawn(kind: Kind, baseUrl: string): Promise<Child> {
  const proc = fork(fileURLToPath(new URL("./lean-transport-client.ts", import.meta.url)), [kind, baseUrl], {
    execArgv: ["--import", "tsx"],
  });
  const next = () =>
    new Promise<unknown>((resolve, reject) => {
      proc.once("message", resolve);
      proc.once("exit", (code) => reject(new Error(`${kind} client exited with ${code}`)));
    });
  await next();
  return {
    proc,
    async run() {
      const result = next();
      const serverCpu0 = process.cpuUsage();
      proc.send({ calls, concurrency });
      const r = (await result) as Result;
      const serverCpu = process.cpuUsage(serverCpu0);
      return { ...r, serverCpuUsPerCall: (serverCpu.user + serverCpu.system) / calls };
    },
  };
}

async function measure(serverName: string, baseUrl: string) {
  const children = new Map<Kind, Child>();
  for (const kind of kinds) children.set(kind, await spawn(kind, baseUrl));
  // Warm-up: JIT, connections.
  for (const kind of kinds) await children.get(kind)!.run();
  const results = new Map<Kind, Result[]>(kinds.map((k) => [k, []]));
  for (let round = 0; round < rounds; round++) {
    // Rotate the order so no client always runs right after the same other one.
    for (let i = 0; i < kinds.length; i++) {
      const kind = kinds[(i + round) % kinds.length]!;
      results.get(kind)!.push(await children.get(kind)!.run());
    }
  }
  for (const child of children.values()) {
    child.proc.send("exit");
    await new Promise((resolve) => child.proc.once("exit", resolve));
  }
  const summary = new Map<Kind, Result>();
  for (const kind of kinds) {
    const rs = results.get(kind)!;
    summary.set(kind, {
      cpuUsPerCall: median(rs.map((r) => r.cpuUsPerCall)),
      callsPerSec: median(rs.map((r) => r.callsPerSec)),
      serverCpuUsPerCall: median(rs.map((r) => r.serverCpuUsPerCall)),
    });
  }
  const base = summary.get("grpc-js")!;
  const rows = kinds.map((kind) => {
    const r = summary.get(kind)!;
    return {
      server: serverName,
      client: kind,
      "client CPU µs/call": r.cpuUsPerCall.toFixed(1),
      "calls/s": Math.round(r.callsPerSec),
      "CPU vs grpc-js": `${(r.cpuUsPerCall / base.cpuUsPerCall).toFixed(2)}x`,
      "calls/s vs grpc-js": `${(r.callsPerSec / base.callsPerSec).toFixed(2)}x`,
      "server CPU µs/call": r.serverCpuUsPerCall.toFixed(1),
    };
  });
  return { rows, summary };
}

console.log(
  `lean transport benchmark: unary Echo, concurrency ${concurrency}, ${calls} calls per slice, ` +
    `${rounds} interleaved rounds (median), Node ${process.version}`,
);
const grpcServer = await startGrpcJsBackend("127.0.0.1", {}, { withHealth: false });
const connectServer = await startEchoBackend({ name: "connect-node" });
const cannedServer = await startCannedServer();
const a = await measure("grpc-js", `http://${grpcServer.address}`);
const b = await measure("connect-node", `http://${connectServer.address}`);
const c = await measure("canned h2", cannedServer.baseUrl);
console.table([...a.rows, ...b.rows, ...c.rows]);
for (const [name, m] of [
  ["grpc-js server", a],
  ["canned h2 server (client-bound)", c],
] as const) {
  for (const kind of ["lean-frames", "lean-node", "lean"] as const) {
    const lean = m.summary.get(kind)!;
    const peer = m.summary.get("grpc-js")!;
    const cpuRatio = lean.cpuUsPerCall / peer.cpuUsPerCall;
    const rateRatio = lean.callsPerSec / peer.callsPerSec;
    // Goals of issue 12.
    console.log(
      `${kind} vs grpc-js client, ${name}: CPU/call ${cpuRatio.toFixed(2)}x (goal <= 0.55x: ${cpuRatio <= 0.55 ? "met" : "not met"}), ` +
        `calls/s ${rateRatio.toFixed(2)}x (goal >= 1.40x: ${rateRatio >= 1.4 ? "met" : "not met"})`,
    );
  }
}
await grpcServer.close();
await connectServer.close();
await cannedServer.close();
