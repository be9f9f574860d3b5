// Child process of bench/lean-transport.ts: one client kind, driven slice by slice over IPC.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { createHttp2Connection, createLeanGrpcTransport } from "@meshlite/transport";
import { createFrameEngineConnection } from "@meshlite/transport/connection";
import {
  EchoRequestSchema,
  type EchoResponse,
  EchoResponseSchema,
  EchoService,
} from "../gen/meshlite/echo/v1/echo_pb.js";

type Kind = "lean" | "lean-frames" | "lean-node" | "connect-node" | "grpc-js";
const [kind, baseUrl] = process.argv.slice(2) as [Kind, string];
const request = create(EchoRequestSchema, { message: "hello, benchmark" });

function makeCall(): () => Promise<unknown> {
  if (kind === "grpc-js") {
    const client = new grpc.Client(new URL(baseUrl).host, grpc.credentials.createInsecure());
    const path = `/${EchoService.typeName}/Echo`;
    const serialize = (m: typeof request) => Buffer.from(toBinary(EchoRequestSchema, m));
    const deserialize = (b: Buffer) => fromBinary(EchoResponseSchema, b);
    return () =>
      new Promise<EchoResponse>((resolve, reject) =>
        client.makeUnaryRequest(path, serialize, deserialize, request, (err, res) =>
          err ? reject(err) : resolve(res!),
        ),
      );
  }
  const transport =
    kind === "lean"
      ? createLeanGrpcTransport({ baseUrl })
      : kind === "lean-frames" || kind === "lean-node"
        ? leanOnConnection(kind)
        : createGrpcTransport({ baseUrl });
  const client = createClient(EchoService, transport);
  return () => client.echo(request);
}

/**
 * The lean transport over meshlite's own connection (one per endpoint): on meshlite's HTTP/2, as
 * the channel runs it, or on node:http2, as the channel ran it before.
 */
function leanOnConnection(kind: "lean-frames" | "lean-node") {
  const url = new URL(baseUrl);
  const options = { origin: baseUrl, address: { host: url.hostname, port: Number(url.port) } };
  if (kind === "lean-frames") {
    const connection = createFrameEngineConnection(options);
    connection.connect();
    return createLeanGrpcTransport({ baseUrl: connection.authority, connection });
  }
  const connection = createHttp2Connection(options);
  connection.connect();
  return createLeanGrpcTransport({ baseUrl: connection.authority, sessionManager: connection });
}

const call = makeCall();

async function slice(calls: number, concurrency: number) {
  let started = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  async function worker() {
    while (started < calls) {
      started++;
      await call();
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallNs = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  return { cpuUsPerCall: (cpu.user + cpu.system) / calls, callsPerSec: calls / (wallNs / 1e9) };
}

process.on("message", (msg: { calls: number; concurrency: number } | "exit") => {
  if (msg === "exit") process.exit(0);
  slice(msg.calls, msg.concurrency).then(
    (result) => process.send!(result),
    (err) => {
      console.error(err);
      process.exit(1);
    },
  );
});
process.send!("ready");
