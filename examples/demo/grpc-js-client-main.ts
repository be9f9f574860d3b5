/**
 * A plain @grpc/grpc-js client in its own process, for contrast with meshlite:
 * `dns:` resolution and round_robin, calling EchoService at a steady rate and
 * reporting which backend answered over IPC (see grpc-js-client-process.ts).
 * Its own process because grpc-js reads GRPC_NODE_USE_ALTERNATIVE_RESOLVER
 * (c-ares, which honours the DNS server in the target) once, at import.
 *
 *   argv: TARGET RATE
 *   parent -> child: { type: "start" } | { type: "stop" }
 *   child -> parent: { type: "ready" } | { type: "counts", byServer, errors, firstError? } | { type: "done" }
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { EchoRequestSchema, type EchoResponse, EchoService } from "../../gen/meshlite/echo/v1/echo_pb.js";
import { echoMethod } from "../../test/support/grpc-js-backend.js";
import { createRecorder, runOpenLoop } from "./open-loop.js";

const [target = "", rate = "100"] = process.argv.slice(2);

if (!process.send) {
  console.error("grpc-js-client-main.ts runs as a child process: start it with startGrpcJsClientProcess()");
  process.exit(2);
}
const send = process.send.bind(process);
// No parent, nothing to report to: exit rather than linger as an orphan.
process.on("disconnect", () => process.exit(0));

const client = new grpc.Client(target, grpc.credentials.createInsecure(), {
  "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
});
const method = echoMethod(`/${EchoService.typeName}/${EchoService.method.echo.name}`);
const request = create(EchoRequestSchema, { message: "hello" });

function echo(): Promise<EchoResponse> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      (error, response) => (error || !response ? reject(error ?? new Error("no response")) : resolve(response)),
    ),
  );
}

const record = createRecorder();
const reported = new Map<string, number>();
let reportedErrors = 0;
/** What changed since the last report. */
function report() {
  const byServer: Record<string, number> = {};
  for (const [server, n] of record.byServer) {
    const delta = n - (reported.get(server) ?? 0);
    if (delta > 0) byServer[server] = delta;
    reported.set(server, n);
  }
  const errors = record.errors - reportedErrors;
  reportedErrors = record.errors;
  send({ type: "counts", byServer, errors, firstError: record.firstError });
}

const stop = new AbortController();
process.on("message", (message: { type: string }) => {
  if (message.type === "stop") stop.abort();
  if (message.type !== "start") return;
  const timer = setInterval(report, 200);
  void runOpenLoop({ rate: Number(rate), durationMs: 600_000, call: echo, record, signal: stop.signal }).then(() => {
    clearInterval(timer);
    report();
    client.close();
    send({ type: "done" }, () => process.exit(0));
  });
});

// Ready once the first resolution and connection are done: the comparison starts even.
client.waitForReady(Date.now() + 10_000, (error) => {
  if (error) {
    console.error(`grpc-js client: ${error.message}`);
    process.exit(1);
  }
  send({ type: "ready" });
});
