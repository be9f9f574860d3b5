/**
 * A gRPC server that answers every unary call with the same precomputed
 * EchoResponse, in a child process. It does a fraction of the work of a Connect
 * server, so that in a client benchmark the client, not the server, is the
 * bottleneck. Started by startCannedBackend() (canned-backend.ts).
 *
 *   argv: HOST; child -> parent: { type: "ready", address }
 */
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { EchoResponseSchema } from "../../gen/meshlite/echo/v1/echo_pb.js";

const host = process.argv[2] ?? "127.0.0.1";
if (!process.send) {
  console.error("canned-backend-main.ts runs as a child process: start it with startCannedBackend()");
  process.exit(2);
}
process.on("disconnect", () => process.exit(0));

const message = toBinary(EchoResponseSchema, create(EchoResponseSchema, { message: "hello", server: "canned" }));
const frame = Buffer.alloc(5 + message.length);
frame.writeUInt32BE(message.length, 1);
frame.set(message, 5);

const server = http2.createServer();
server.on("stream", (stream) => {
  stream.on("error", () => {});
  stream.resume();
  stream.once("end", () => {
    if (stream.destroyed) return;
    stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
    stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    stream.end(frame);
  });
});
server.listen(0, host, () => {
  const { port } = server.address() as AddressInfo;
  process.send?.({ type: "ready", address: `${host}:${port}` });
});
