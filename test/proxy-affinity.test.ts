import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createOrcaInterceptor } from "@meshlite/orca";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { waitFor } from "./support/wait-for.js";

let backends: EchoBackend[];
let proxy: MeshliteProxy;
let baseUrl: string;
let adminUrl: string;

beforeAll(async () => {
  backends = await Promise.all(
    [71, 72, 73, 74].map((n) =>
      startEchoBackend({
        host: `127.0.16.${n}`,
        interceptors: [createOrcaInterceptor({ loadOptions: { metrics: () => ({ namedMetrics: { pod: n } }) } })],
      }),
    ),
  );
  proxy = createProxy({
    logger: silentLogger,
    routes: [{ target: `static:///${backends.map((b) => b.address).join(",")}`, balancer: "ring-hash" }],
  });
  baseUrl = `http://127.0.16.70:${(await proxy.listen("127.0.16.70:0")).port}`;
  adminUrl = `http://127.0.16.70:${(await proxy.listenAdmin("127.0.16.70:0")).port}`;
  await waitFor("every endpoint ready", () => proxy.ready().routes[0]?.readyEndpoints === 4);
});
afterAll(async () => {
  await proxy.close(1000);
  await Promise.all(backends.map((b) => b.close()));
});

describe("the proxy with ring-hash and ORCA backends", () => {
  it("keeps every x-hash-key on one backend, and shows each backend's load report in /routes", async () => {
    const client = createClient(EchoService, createGrpcTransport({ baseUrl }));
    const serverOf = new Map<string, Set<string>>();
    for (let round = 0; round < 3; round++) {
      for (let user = 0; user < 30; user++) {
        const key = `user-${user}`;
        const { server } = await client.echo({ message: key }, { headers: { "x-hash-key": key } });
        serverOf.set(key, (serverOf.get(key) ?? new Set()).add(server));
      }
    }
    for (const [key, servers] of serverOf) expect([key, servers.size]).toEqual([key, 1]);
    expect(new Set([...serverOf.values()].flatMap((s) => [...s])).size).toBeGreaterThanOrEqual(3);

    const routes = (await (await fetch(`${adminUrl}/routes`)).json()) as Array<{
      endpoints: Array<{ address: string; loadReport?: { namedMetrics: Record<string, number> } }>;
    }>;
    const used = new Set([...serverOf.values()].flatMap((s) => [...s]));
    const reported = (routes[0]?.endpoints ?? []).filter((e) => used.has(e.address));
    expect(reported.length).toBe(used.size);
    for (const endpoint of reported) {
      const n = Number(endpoint.address.split(":")[0]?.split(".")[3]);
      expect(endpoint.loadReport?.namedMetrics).toEqual({ pod: n });
    }
  });

  it("reads the reports of Connect unary responses (trailer- headers) too", async () => {
    const backend = await startEchoBackend({
      host: "127.0.16.75",
      interceptors: [createOrcaInterceptor({ loadOptions: { metrics: () => ({ namedMetrics: { connect: 1 } }) } })],
    });
    const connectProxy = createProxy({ logger: silentLogger, routes: [{ target: `static:///${backend.address}` }] });
    try {
      const url = `http://127.0.16.76:${(await connectProxy.listen("127.0.16.76:0")).port}`;
      const admin = `http://127.0.16.76:${(await connectProxy.listenAdmin("127.0.16.76:0")).port}`;
      const client = createClient(EchoService, createConnectTransport({ baseUrl: url, httpVersion: "2" }));
      await client.echo({ message: "x" });
      const routes = (await (await fetch(`${admin}/routes`)).json()) as Array<{
        endpoints: Array<{ loadReport?: { namedMetrics: Record<string, number> } }>;
      }>;
      expect(routes[0]?.endpoints[0]?.loadReport?.namedMetrics).toEqual({ connect: 1 });
    } finally {
      await connectProxy.close(1000);
      await backend.close();
    }
  });
});
