import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { type Channel, createChannel } from "meshlite";
import { afterAll, beforeAll, describe } from "vitest";
import { interopCases } from "./support/interop-cases.js";
import { type InteropServer, startGrpcJsInteropServer } from "./support/interop-servers.js";

// grpc's interop test cases against three @grpc/grpc-js TestService servers:
// on channels (default protocol, the lean gRPC transport, and connect-node's
// gRPC implementation) and, for comparison, on connect-node's plain gRPC
// transport. The compression cases are in interop-compression.test.ts, the
// proxy in interop-proxy.test.ts.
let servers: InteropServer[];
beforeAll(async () => {
  servers = await Promise.all([41, 42, 43].map((n) => startGrpcJsInteropServer(`127.0.0.${n}`)));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

function channelSuite(name: string, options: () => Parameters<typeof createChannel>[0]) {
  describe(name, () => {
    let channel: Channel;
    beforeAll(() => {
      channel = createChannel(options());
    });
    afterAll(() => channel.close());
    interopCases(() => channel);
  });
}

const all = () => `static:///${servers.map((s) => s.address).join(",")}`;

channelSuite("channel, p2c over three grpc-js servers", () => ({ target: all(), logger: silentLogger }));
channelSuite("channel, round-robin over three grpc-js servers", () => ({
  target: all(),
  balancer: "round-robin",
  logger: silentLogger,
}));
channelSuite("channel, one grpc-js server", () => ({
  target: `static:///${servers[0]!.address}`,
  logger: silentLogger,
}));
channelSuite("channel with grpcImplementation connect-node, p2c over three grpc-js servers", () => ({
  target: all(),
  grpcImplementation: "connect-node",
  logger: silentLogger,
}));

describe("connect-node gRPC transport, one grpc-js server (for comparison)", () => {
  let transport: Transport;
  beforeAll(() => {
    transport = createGrpcTransport({ baseUrl: `http://${servers[0]!.address}` });
  });
  interopCases(() => transport);
});
