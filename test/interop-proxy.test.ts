import type { Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { type Channel, createChannel } from "meshlite";
import { afterAll, beforeAll, describe } from "vitest";
import { interopCases } from "./support/interop-cases.js";
import { type InteropServer, startGrpcJsInteropServer } from "./support/interop-servers.js";
import { waitFor } from "./support/wait-for.js";

// grpc's interop test cases through meshlite-proxy, which balances over three
// @grpc/grpc-js TestService servers: from connect-node's gRPC transport and
// from a channel (default protocol) with the proxy as its one endpoint.
let servers: InteropServer[];
let proxy: MeshliteProxy;
let proxyAddress: string;
beforeAll(async () => {
  servers = await Promise.all([47, 48, 49].map((n) => startGrpcJsInteropServer(`127.0.0.${n}`)));
  proxy = createProxy({
    logger: silentLogger,
    routes: [{ name: "interop", target: `static:///${servers.map((s) => s.address).join(",")}` }],
  });
  const bound = await proxy.listen("127.0.0.50:0");
  proxyAddress = `127.0.0.50:${bound.port}`;
  await waitFor("the proxy's endpoints to be ready", () =>
    proxy.ready().routes[0]?.readyEndpoints === 3 ? true : undefined,
  );
});
afterAll(async () => {
  await proxy.close(1000);
  await Promise.all(servers.map((s) => s.close()));
});

describe("connect-node gRPC transport through meshlite-proxy", () => {
  let transport: Transport;
  beforeAll(() => {
    transport = createGrpcTransport({ baseUrl: `http://${proxyAddress}` });
  });
  interopCases(() => transport);
});

describe("channel through meshlite-proxy", () => {
  let channel: Channel;
  beforeAll(() => {
    channel = createChannel({ target: `static:///${proxyAddress}`, logger: silentLogger });
  });
  afterAll(() => channel.close());
  interopCases(() => channel);
});
