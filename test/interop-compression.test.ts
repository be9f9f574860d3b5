import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { compressionGzip, createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { createChannel } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestService } from "../gen/grpc/testing/test_pb.js";
import { expectZeros, zeros } from "./support/interop-cases.js";
import { type ConnectInteropServer, startConnectInteropServer } from "./support/interop-servers.js";
import { waitFor } from "./support/wait-for.js";

// grpc's client_compressed_unary and server_compressed_unary interop cases.
// They run against a connect-node TestService server: @grpc/grpc-js cannot
// tell a handler whether a request message came compressed, nor compress one
// response and not another. The connect-node server sees the envelope flag of
// each request message (its gzip is asked to decompress flagged ones only) and
// records whether it compressed the response.
let servers: ConnectInteropServer[];
let proxy: MeshliteProxy;
let proxyAddress: string;
beforeAll(async () => {
  servers = await Promise.all([44, 45].map((n) => startConnectInteropServer(`127.0.0.${n}`)));
  proxy = createProxy({
    logger: silentLogger,
    routes: [{ name: "interop", target: `static:///${servers.map((s) => s.address).join(",")}` }],
  });
  const bound = await proxy.listen("127.0.0.46:0");
  proxyAddress = `127.0.0.46:${bound.port}`;
  await waitFor("the proxy's endpoints to be ready", () =>
    proxy.ready().routes[0]?.readyEndpoints === 2 ? true : undefined,
  );
});
afterAll(async () => {
  await proxy.close(1000);
  await Promise.all(servers.map((s) => s.close()));
});

type Factory = (options: { sendCompression?: typeof compressionGzip }) => Transport & { close?(): Promise<void> };
const transports: Record<string, Factory> = {
  "channel over two connect-node servers": (o) =>
    createChannel({ target: `static:///${servers.map((s) => s.address).join(",")}`, logger: silentLogger, ...o }),
  "channel with grpcImplementation connect-node": (o) =>
    createChannel({
      target: `static:///${servers.map((s) => s.address).join(",")}`,
      grpcImplementation: "connect-node",
      logger: silentLogger,
      ...o,
    }),
  "connect-node gRPC transport, one connect-node server": (o) =>
    createGrpcTransport({ baseUrl: `http://${servers[0]!.address}`, ...o }),
  "channel through meshlite-proxy": (o) =>
    createChannel({ target: `static:///${proxyAddress}`, logger: silentLogger, ...o }),
};

/** What the server of the latest UnaryCall saw (the channel picks one of two). */
function lastUnary() {
  const seen = servers.map((s) => s.lastUnary()).filter((r) => r !== undefined);
  return seen.sort((a, b) => a.seq - b.seq).at(-1);
}

describe.each(Object.keys(transports))("%s", (name) => {
  const large = { responseSize: 314159, payload: { body: zeros(271828) } };
  let plain: ReturnType<Factory>;
  let gzip: ReturnType<Factory>;
  beforeAll(() => {
    plain = transports[name]!({});
    gzip = transports[name]!({ sendCompression: compressionGzip });
  });
  afterAll(async () => {
    await plain.close?.();
    await gzip.close?.();
  });

  it("client_compressed_unary", async () => {
    // The probe: a server that supports the test rejects an uncompressed message it was told to expect compressed.
    const probe = await createClient(TestService, plain)
      .unaryCall({ ...large, expectCompressed: { value: true } })
      .catch((e: unknown) => e);
    expect(probe).toBeInstanceOf(ConnectError);
    expect(Code[(probe as ConnectError).code]).toBe("InvalidArgument");

    const compressed = await createClient(TestService, gzip).unaryCall({ ...large, expectCompressed: { value: true } });
    expectZeros(compressed.payload?.body, 314159);
    expect(lastUnary()?.requestCompressed).toBe(true);

    const uncompressed = await createClient(TestService, plain).unaryCall({
      ...large,
      expectCompressed: { value: false },
    });
    expectZeros(uncompressed.payload?.body, 314159);
    expect(lastUnary()?.requestCompressed).toBe(false);
  });

  it("server_compressed_unary", async () => {
    let encoding: string | null = null;
    const compressed = await createClient(TestService, plain).unaryCall(
      { ...large, responseCompressed: { value: true } },
      { onHeader: (h) => (encoding = h.get("grpc-encoding")) },
    );
    expectZeros(compressed.payload?.body, 314159);
    expect(lastUnary()?.responseCompressed).toBe(true);
    expect(encoding).toBe("gzip");

    // connect-node's server compresses every message of a call whose
    // compression was negotiated: "not set for the uncompressed one" is a
    // check this server cannot pass, so only the call's success is asserted.
    const uncompressed = await createClient(TestService, plain).unaryCall({
      ...large,
      responseCompressed: { value: false },
    });
    expectZeros(uncompressed.payload?.body, 314159);
  });
});
