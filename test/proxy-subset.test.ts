// Subsetting in the proxy (issue 15): a route over 24 upstream backends with
// subset 6 at rank 1 of 4 connects to its aperture only and forwards every call.
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type BackendProcess, startBackendGroup } from "./support/backend-process.js";
import { startLoad } from "./support/load.js";
import { waitFor } from "./support/wait-for.js";

let backends: BackendProcess[] = [];
let proxy: MeshliteProxy;
let baseUrl: string;
let adminUrl: string;

interface RouteView {
  subset?: { mode: string; rank?: number; count?: number; members: { address: string }[]; leaving: string[] };
  endpoints: { address: string; state: string; connections: number }[];
}

beforeAll(async () => {
  backends = await startBackendGroup(Array.from({ length: 24 }, (_, i) => `127.0.71.${i + 40}`));
  proxy = createProxy({
    logger: silentLogger,
    routes: [
      {
        name: "echo",
        target: `static:///${backends.map((b) => b.address).join(",")}`,
        subset: { size: 6, minEndpoints: 0, rank: 1, count: 4 },
      },
    ],
  });
  baseUrl = `http://127.0.71.100:${(await proxy.listen("127.0.71.100:0")).port}`;
  adminUrl = `http://127.0.71.100:${(await proxy.listenAdmin("127.0.71.100:0")).port}`;
});
afterAll(async () => {
  await proxy.close(1000);
  await Promise.all(backends.map((b) => b.kill()));
});

describe("subset in the proxy", () => {
  it("connects the route to its aperture only and forwards calls to its members", async () => {
    const route = () => proxy.routes()[0] as unknown as RouteView;
    await waitFor("the subset's members ready", () => {
      const r = route();
      const members = new Set(r.subset?.members.map((m) => m.address));
      return members.size > 0 && r.endpoints.every((e) => (e.state === "ready") === members.has(e.address));
    });
    const r = route();
    expect(r.subset).toMatchObject({ mode: "aperture", rank: 1, count: 4 });
    const members = new Set(r.subset?.members.map((m) => m.address));
    // 24 servers over 4 clients: an aperture a quarter of the ring wide, 6 servers, at most 7 touched.
    expect(members.size).toBeLessThanOrEqual(7);
    for (const e of r.endpoints) if (!members.has(e.address)) expect(e.connections).toBe(0);

    const client = createClient(EchoService, createGrpcTransport({ baseUrl }));
    const load = startLoad(() => client.echo({ message: "x" }), { concurrency: 4, intervalMs: 2 });
    await waitFor("300 calls", () => load.result.ok + load.result.failed >= 300);
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    for (const server of result.byServer.keys()) expect(members.has(server)).toBe(true);
    const metrics = await (await fetch(`${adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/meshlite_proxy_subset_endpoints\{route="echo",mode="aperture"\} [67]/);
  });

  it("rejects bad subset options in a route", () => {
    expect(() => createProxy({ routes: [{ target: "static:///127.0.0.1:1", subset: { size: -1 } }] })).toThrow(
      "routes[0].subset.size must be a whole number >= 1, got -1",
    );
  });
});
