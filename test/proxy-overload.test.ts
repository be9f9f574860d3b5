// Slow start, overload signals and per-upstream limits in the proxy: the
// pool under it is the channel's, configured per route.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { startLoad } from "./support/load.js";
import { waitFor } from "./support/wait-for.js";

let backends: EchoBackend[] = [];
let proxies: MeshliteProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.map((p) => p.close(100)));
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
  proxies = [];
});

async function startProxy(route: Parameters<typeof createProxy>[0]["routes"][0], endpoints: number) {
  const proxy = createProxy({ logger: silentLogger, routes: [route] });
  proxies.push(proxy);
  const { port } = await proxy.listen("127.0.14.40:0");
  await waitFor("every endpoint ready", () => proxy.ready().routes[0]?.readyEndpoints === endpoints);
  return createClient(EchoService, createGrpcTransport({ baseUrl: `http://127.0.14.40:${port}` }));
}

describe("proxy", () => {
  it("sends a backend that sheds half its calls with RESOURCE_EXHAUSTED few calls (overloadPenalty: false: its full share)", async () => {
    backends = await Promise.all([41, 42, 43, 44].map((n) => startEchoBackend({ host: `127.0.14.${n}` })));
    const target = `static:///${backends.map((b) => b.address).join(",")}`;
    const withPenalty = await startProxy({ target }, 4);
    const without = await startProxy({ target, overloadPenalty: false }, 4);
    const shedding = backends[0] as EchoBackend;
    shedding.setShed(0.5);
    // Counted at the backends: the proxies' calls by which proxy sent them.
    const loads = [withPenalty, without].map((client) =>
      startLoad(
        async () => {
          const r = await client.echo({ message: "x" });
          return { server: r.server };
        },
        { concurrency: 4, intervalMs: 10 },
      ),
    );
    // A second for the penalty to take hold (a few calls), then four counted.
    await new Promise((r) => setTimeout(r, 1000));
    const before = loads.map((l) => ({ ok: l.result.ok, failed: l.result.failed }));
    for (const l of loads) l.mark();
    await new Promise((r) => setTimeout(r, 4000));
    const counted = loads.map((l, i) => ({
      toShedding: l.since().get(shedding.address) ?? 0,
      ok: l.result.ok - (before[i]?.ok ?? 0),
      failed: l.result.failed - (before[i]?.failed ?? 0),
    }));
    await Promise.all(loads.map((l) => l.stop()));
    const [on, off] = counted;
    if (on === undefined || off === undefined) throw new Error("no result");
    // A shed call fails and names no server: the calls it got are the ones it answered and the failed ones.
    const share = (r: typeof on) => ((r.toShedding + r.failed) / Math.max(1, r.ok + r.failed)) * 100;
    const line = `shedding backend's share: with the penalty ${share(on).toFixed(1)}% (${on.failed} failed of ${on.ok + on.failed}), without ${share(off).toFixed(1)}% (${off.failed} failed of ${off.ok + off.failed})`;
    console.log(line);
    expect(on.ok + on.failed, line).toBeGreaterThan(60);
    expect(share(on), line).toBeLessThan(10);
    expect(on.failed / (on.ok + on.failed), line).toBeLessThan(off.failed / (off.ok + off.failed));
  });

  it("applies a route's limits: past maxInFlightPerEndpoint a call fails at once with RESOURCE_EXHAUSTED naming the limit", async () => {
    backends = [await startEchoBackend({ host: "127.0.14.45" })];
    const client = await startProxy(
      { target: `static:///${backends[0]?.address}`, limits: { maxInFlightPerEndpoint: 2 } },
      1,
    );
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => client.echo({ message: "x", delayMs: 300 })),
    );
    const failures = results.flatMap((r) => (r.status === "rejected" ? [ConnectError.from(r.reason)] : []));
    expect(results.length - failures.length).toBe(2);
    expect(failures.map((f) => f.code)).toEqual(Array(6).fill(Code.ResourceExhausted));
    expect(failures[0]?.rawMessage).toContain("limits.maxInFlightPerEndpoint");
    expect((await client.echo({ message: "after" })).message).toBe("after");
  });

  it("checks a route's slowStart, overloadPenalty and limits, saying where and what is accepted", () => {
    const target = "static:///127.0.14.46:80";
    expect(() => createProxy({ routes: [{ target, slowStart: { aggression: 0 } }] })).toThrow(
      "routes[0].slowStart.aggression must be a number > 0",
    );
    expect(() => createProxy({ routes: [{ target, limits: { whenFull: "later" as "wait" } }] })).toThrow(
      'routes[0].limits.whenFull must be "fail" or "wait"',
    );
    expect(() => createProxy({ routes: [{ target, overloadPenalty: { factr: 2 } as never }] })).toThrow(
      'routes[0].overloadPenalty: unknown key "factr"',
    );
  });
});
