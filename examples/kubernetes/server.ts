// The echo server of the example: answers with its pod name, over gRPC, gRPC-web and Connect.
import * as http2 from "node:http2";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { EchoService } from "../../gen/meshlite/echo/v1/echo_pb.js";

const name = process.env.POD_NAME ?? "echo";
const port = Number(process.env.PORT ?? "50051");

const routes = (router: ConnectRouter) =>
  router.service(EchoService, {
    echo: (req) => ({ message: req.message, server: name }),
    echoIdempotent: (req) => ({ message: req.message, server: name }),
    async *serverStream(req) {
      for (let index = 0; index < req.count; index++) yield { message: req.message, server: name, index };
    },
    async clientStream(reqs) {
      const parts: string[] = [];
      for await (const req of reqs) parts.push(req.message);
      return { message: parts.join(","), server: name, index: parts.length };
    },
    async *bidi(reqs) {
      let index = 0;
      for await (const req of reqs) yield { message: req.message, server: name, index: index++ };
    },
  });

const server = http2.createServer(connectNodeAdapter({ routes })).listen(port, () => {
  console.log(`${name} listening on :${port}`);
});
// On SIGTERM: stop accepting, send GOAWAY, let in-flight calls finish.
process.once("SIGTERM", () => server.close());
