// Client CPU per call and calls/s of the lean gRPC transport, @grpc/grpc-js and connect-node's
// gRPC transport: unary calls at concurrency 64, each client in its own forked process, slices
// interleaved round by round, median of the rounds. Servers: @grpc/grpc-js (so that the client is
// the limit) and connect-node, both in this process.
//   pnpm bench:lean            (BENCH_ROUNDS, BENCH_CALLS, BENCH_CONCURRENCY to change the load)
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  type EchoRequest,
  EchoRequestSchema,
  type EchoResponse,
  EchoResponseSchema,
  EchoService,
} from "../gen/meshlite/echo/v1/echo_pb.js";
import { startEchoBackend } from "../test/support/echo-backend.js";

const rounds = Number(process.env.BENCH_ROUNDS ?? 7);
const calls = Number(process.env.BENCH_CALLS ?? 4000);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 64);
const kinds = ["lean", "grpc-js", "connect-node"] as const;
type Kind = (typeof kinds)[number];
interface Result {
  cpuUsPerCall: number;
  callsPerSec: number;
}

async function startGrpcJsEcho(): Promise<{ baseUrl: string; close(): Promise<void> }> {
  const server = new grpc.Server();
  server.addService(
    {
      echo: {
        path: `/${EchoService.typeName}/Echo`,
        requestStream: false,
        responseStream: false,
        requestSerialize: (m: EchoRequest) => Buffer.from(toBinary(EchoRequestSchema, m)),
        requestDeserialize: (b: Buffer) => fromBinary(EchoRequestSchema, b),
        responseSerialize: (m: EchoResponse) => Buffer.from(toBinary(EchoResponseSchema, m)),
        responseDeserialize: (b: Buffer) => fromBinary(EchoResponseSchema, b),
      },
    },
    {
      echo(
        call: grpc.ServerUnaryCall<EchoRequest, EchoResponse>,
        callback: grpc.sendUnaryData<EchoResponse>,
      ) {
        callback(null, create(EchoResponseSchema, { message: call.request.message, server: "grpc-js" }));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
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
      proc.send({ calls, concurrency });
      return (await result) as Result;
    },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

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
    };
  });
  return { rows, summary };
}

console.log(
  `lean transport benchmark: unary Echo, concurrency ${concurrency}, ${calls} calls per slice, ` +
    `${rounds} interleaved rounds (median), Node ${process.version}`,
);
const grpcServer = await startGrpcJsEcho();
const connectServer = await startEchoBackend({ name: "connect-node" });
const a = await measure("grpc-js", grpcServer.baseUrl);
const b = await measure("connect-node", `http://${connectServer.address}`);
console.table([...a.rows, ...b.rows]);
const lean = a.summary.get("lean")!;
const peer = a.summary.get("grpc-js")!;
const cpuRatio = lean.cpuUsPerCall / peer.cpuUsPerCall;
const rateRatio = lean.callsPerSec / peer.callsPerSec;
console.log(
  `goal vs grpc-js (grpc-js server): CPU/call ${cpuRatio.toFixed(2)}x (goal <= 0.70x: ${cpuRatio <= 0.7 ? "met" : "not met"}), ` +
    `calls/s ${rateRatio.toFixed(2)}x (goal >= 1.30x: ${rateRatio >= 1.3 ? "met" : "not met"})`,
);
await grpcServer.close();
await connectServer.close();
