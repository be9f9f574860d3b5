import { createClient, decodeBinaryHeader, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { type ChannelOptions, createChannel } from "meshlite";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { TestService } from "../gen/grpc/testing/test_pb.js";
import {
  type ConnectInteropServer,
  echoInitial,
  echoTrailingBin,
  startConnectInteropServer,
} from "./support/interop-servers.js";
import { waitFor } from "./support/wait-for.js";

// Every call kind delivers the server's trailers, to onTrailer and in the
// response's trailer, on every protocol: on a channel (also after a retry of
// a stream that failed before its first response) and through meshlite-proxy.
// The server (connect-node, all three protocols) echoes
// x-grpc-test-echo-trailing-bin in the trailers.
let server: ConnectInteropServer;
let proxy: MeshliteProxy;
let proxyUrl: string;
beforeAll(async () => {
  server = await startConnectInteropServer("127.0.0.53");
  proxy = createProxy({ logger: silentLogger, routes: [{ name: "interop", target: `static:///${server.address}` }] });
  const bound = await proxy.listen("127.0.0.54:0");
  proxyUrl = `http://127.0.0.54:${bound.port}`;
  await waitFor("the proxy's endpoint to be ready", () =>
    proxy.ready().routes[0]?.readyEndpoints === 1 ? true : undefined,
  );
});
afterAll(async () => {
  await proxy.close(1000);
  await server.close();
});
beforeEach(() => server.failNext(0));

const trailingValue = new Uint8Array([0x0a, 0x0b, 0x0a, 0x0b, 0x0a]);
const headers = () => new Headers({ [echoInitial]: "initial", [echoTrailingBin]: "CgsKCwo=" });

function expectTrailer(trailer: Headers | undefined, where: string): void {
  const value = trailer?.get(echoTrailingBin);
  expect(value, `${where} has no ${echoTrailingBin}`).toBeTypeOf("string");
  expect(decodeBinaryHeader(value as string)).toEqual(trailingValue);
}

/** Calls each kind through createClient, returning what onTrailer received. */
const callKinds: Record<string, (t: Transport, onTrailer: (t: Headers) => void) => Promise<void>> = {
  unary: async (t, onTrailer) => {
    await createClient(TestService, t).unaryCall({ responseSize: 4 }, { headers: headers(), onTrailer });
  },
  "server-streaming": async (t, onTrailer) => {
    const req = { responseParameters: [{ size: 4 }, { size: 4 }] };
    for await (const _ of createClient(TestService, t).streamingOutputCall(req, { headers: headers(), onTrailer }));
  },
  "client-streaming": async (t, onTrailer) => {
    async function* requests() {
      yield { payload: { body: new Uint8Array(4) } };
      yield { payload: { body: new Uint8Array(4) } };
    }
    await createClient(TestService, t).streamingInputCall(requests(), { headers: headers(), onTrailer });
  },
  bidi: async (t, onTrailer) => {
    async function* requests() {
      yield { responseParameters: [{ size: 4 }] };
      yield { responseParameters: [{ size: 4 }] };
    }
    for await (const _ of createClient(TestService, t).fullDuplexCall(requests(), { headers: headers(), onTrailer }));
  },
};

/** The streaming methods called on the transport itself: response.trailer, read after the messages. */
const streamMethods = {
  "server-streaming": TestService.method.streamingOutputCall,
  "client-streaming": TestService.method.streamingInputCall,
  bidi: TestService.method.fullDuplexCall,
} as const;

async function streamTrailer(t: Transport, kind: keyof typeof streamMethods): Promise<Headers> {
  async function* input() {
    yield kind === "client-streaming"
      ? { payload: { body: new Uint8Array(4) } }
      : { responseParameters: [{ size: 4 }] };
  }
  const method = streamMethods[kind];
  const response = await t.stream(method as never, undefined, undefined, headers(), input() as never);
  for await (const _ of response.message);
  return response.trailer;
}

function trailerCases(transport: () => Transport, { retried = false } = {}) {
  for (const kind of Object.keys(callKinds)) {
    it(`${kind}: onTrailer gets the trailers`, async () => {
      if (retried && kind !== "unary") server.failNext(1);
      let trailer: Headers | undefined;
      await callKinds[kind]!(transport(), (t) => {
        trailer = t;
      });
      expectTrailer(trailer, "onTrailer's trailers");
    });
  }
  for (const kind of Object.keys(streamMethods) as (keyof typeof streamMethods)[]) {
    it(`${kind}: response.trailer holds the trailers after the messages`, async () => {
      if (retried) server.failNext(1);
      expectTrailer(await streamTrailer(transport(), kind), "response.trailer");
    });
  }
}

const protocols: Record<string, Partial<ChannelOptions>> = {
  "gRPC (lean)": { protocol: "grpc" },
  "gRPC (connect-node)": { protocol: "grpc", grpcImplementation: "connect-node" },
  Connect: { protocol: "connect" },
  "gRPC-web": { protocol: "grpc-web" },
};

describe.each(Object.keys(protocols))("channel, %s", (protocol) => {
  const channel = () =>
    createChannel({ target: `static:///${server.address}`, logger: silentLogger, ...protocols[protocol] });
  let plain: ReturnType<typeof createChannel>;
  let retrying: ReturnType<typeof createChannel>;
  beforeAll(() => {
    plain = channel();
    retrying = createChannel({
      target: `static:///${server.address}`,
      logger: silentLogger,
      ...protocols[protocol],
      retry: { budget: false, methods: { "grpc.testing.TestService": { initialBackoffMs: 1, jitter: 0 } } },
    });
  });
  afterAll(async () => {
    await plain.close();
    await retrying.close();
  });
  describe("first attempt", () => trailerCases(() => plain));
  describe("after a retry of a stream that failed before its first response", () => {
    trailerCases(() => retrying, { retried: true });
    it("the retry happened", async () => {
      server.failNext(1);
      const before = server.calls.get("StreamingOutputCall") ?? 0;
      await streamTrailer(retrying, "server-streaming");
      expect((server.calls.get("StreamingOutputCall") ?? 0) - before).toBe(2);
    });
  });
});

const throughProxy: Record<string, () => Transport> = {
  "channel (gRPC, lean)": () => createChannel({ target: `static:///${proxyUrl.slice(7)}`, logger: silentLogger }),
  "connect-node gRPC": () => createGrpcTransport({ baseUrl: proxyUrl }),
  "connect-node Connect": () => createConnectTransport({ baseUrl: proxyUrl, httpVersion: "2" }),
  "connect-node gRPC-web": () => createGrpcWebTransport({ baseUrl: proxyUrl, httpVersion: "2" }),
};

describe.each(Object.keys(throughProxy))("through meshlite-proxy, %s", (name) => {
  let transport: Transport & { close?(): Promise<void> };
  beforeAll(() => {
    transport = throughProxy[name]!();
  });
  afterAll(() => transport.close?.());
  trailerCases(() => transport);
});

// The pattern Connect's documentation shows for interceptors that wrap a
// stream's messages: a spread of the response, taken when the headers arrive.
const wrapMessages: Interceptor = (next) => async (req) => {
  const res = await next(req);
  if (!res.stream) return res;
  const messages = res.message;
  return {
    ...res,
    message: (async function* () {
      yield* messages;
    })(),
  };
};

describe.each(Object.keys(protocols))(
  "channel, %s, with an interceptor that spreads the stream response",
  (protocol) => {
    let channel: ReturnType<typeof createChannel>;
    beforeAll(() => {
      channel = createChannel({
        target: `static:///${server.address}`,
        logger: silentLogger,
        interceptors: [wrapMessages],
        ...protocols[protocol],
      });
    });
    afterAll(() => channel.close());
    trailerCases(() => channel);
  },
);
