import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { type Endpoint, registerResolver, silentLogger } from "@meshlite/core";
import { createProxy } from "@meshlite/proxy";
import { createChannel } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { createManualResolver, type ManualResolver } from "./support/manual-resolver.js";
import { waitFor } from "./support/wait-for.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const cycles = 10_000;
let backends: EchoBackend[] = [];
beforeAll(async () => {
  backends = await Promise.all([1, 2, 3, 4, 5].map((n) => startEchoBackend({ host: `127.0.11.${n}` })));
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.kill()));
});

const endpoint = (b: EchoBackend): Endpoint => ({ host: b.host, port: b.port });

/** What the process holds: heap after a full GC, and its handles by type (sockets, timers...). */
async function footprint(): Promise<{ heapMb: number; resources: Record<string, number> }> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
  const resources: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) resources[type] = (resources[type] ?? 0) + 1;
  return { heapMb: process.memoryUsage().heapUsed / 2 ** 20, resources };
}

/** The footprint once the sockets of retired endpoints have closed (or 10 s passed). */
async function settled(before: { resources: Record<string, number> }) {
  let now = await footprint();
  const until = performance.now() + 10_000;
  while (JSON.stringify(now.resources) !== JSON.stringify(before.resources) && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    now = await footprint();
  }
  return now;
}

/**
 * Adds and removes an endpoint `n` times: the set is two fixed backends
 * plus one of three others, changed every cycle, with a call through every
 * hundredth set. Connections are dialled and closed for real.
 */
async function churn(resolver: ManualResolver, call: () => Promise<unknown>, live: () => number, n = cycles) {
  const [a, b, ...rotating] = backends as [EchoBackend, EchoBackend, ...EchoBackend[]];
  for (let i = 0; i < n; i++) {
    resolver.set([endpoint(a), endpoint(b), endpoint(rotating[i % rotating.length] as EchoBackend)]);
    // A turn of the event loop per change: connections get dialled (and some
    // established) before their endpoint leaves again.
    await new Promise((r) => setImmediate(r));
    if (i % 100 === 99) await call();
    if (i % 1000 === 999) await waitFor("removed endpoints to be retired", () => live() === 3);
  }
  resolver.set([endpoint(a), endpoint(b)]);
  await waitFor("removed endpoints to be retired", () => live() === 2);
  await call();
}

describe(`${cycles} endpoint add/remove cycles`, () => {
  it("leave no growth in heap, sockets or timers of a channel", async () => {
    const resolver = createManualResolver([endpoint(backends[0] as EchoBackend), endpoint(backends[1] as EchoBackend)]);
    const channel = createChannel({ target: "static:///svc.test:80", resolver, logger: silentLogger });
    const client = createClient(EchoService, channel);
    const call = () => client.echo({ message: "x" });
    const live = () => channel.snapshot().endpoints.length;
    await call();
    // A shorter round warms up (JIT, pools inside Node), then the measured round.
    await churn(resolver, call, live, 2000);
    const before = await footprint();
    await churn(resolver, call, live);
    const after = await settled(before);
    console.log(`channel: heap ${before.heapMb.toFixed(1)} -> ${after.heapMb.toFixed(1)} MB`, after.resources);
    expect(after.resources).toEqual(before.resources);
    expect(after.heapMb - before.heapMb).toBeLessThan(3);
    await channel.close();
  }, 240_000);

  it("leave no growth in heap, sockets, timers or metrics series of a proxy", async () => {
    const resolver = createManualResolver([endpoint(backends[0] as EchoBackend), endpoint(backends[1] as EchoBackend)]);
    // The proxy's routes name targets; this process resolves its one `static:` target by hand.
    registerResolver("static", () => resolver);
    const proxy = createProxy({ logger: silentLogger, routes: [{ target: "static:///svc.test:80" }] });
    const { port } = await proxy.listen("127.0.11.20:0");
    const client = createClient(EchoService, createGrpcTransport({ baseUrl: `http://127.0.11.20:${port}` }));
    const call = () => client.echo({ message: "x" });
    const live = () => proxy.ready().routes[0]?.readyEndpoints ?? 0;
    await call();
    await churn(resolver, call, live, 2000);
    const series = (await proxy.metrics.render()).split("\n").length;
    const before = await footprint();
    await churn(resolver, call, live);
    const after = await settled(before);
    console.log(`proxy: heap ${before.heapMb.toFixed(1)} -> ${after.heapMb.toFixed(1)} MB`, after.resources);
    expect(after.resources).toEqual(before.resources);
    expect(after.heapMb - before.heapMb).toBeLessThan(3);
    expect((await proxy.metrics.render()).split("\n").length).toBe(series);
    await proxy.close();
  }, 240_000);
});
