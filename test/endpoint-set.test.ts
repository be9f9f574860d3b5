import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { startLoad } from "./support/load.js";
import { createManualResolver } from "./support/manual-resolver.js";
import { waitFor } from "./support/wait-for.js";

let backends: EchoBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

const endpoint = (b: EchoBackend) => ({ host: b.host, port: b.port });

describe("following the endpoint set", () => {
  it("drains a removed endpoint: no new calls, in-flight calls finish, then its connection closes", async () => {
    backends = await Promise.all([21, 22, 23].map((n) => startEchoBackend({ host: `127.0.0.${n}`, delayMs: 100 })));
    const [a, b, c] = backends as [EchoBackend, EchoBackend, EchoBackend];
    const resolver = createManualResolver([endpoint(a), endpoint(b), endpoint(c)]);
    await using channel = createChannel({ target: "static:///svc.test:80", resolver, balancer: "round-robin" });
    const client = createClient(EchoService, channel);
    const load = startLoad(() => client.echo({ message: "x" }), { concurrency: 6, intervalMs: 0 });
    await waitFor("calls in flight on c", () => c.inFlight() > 0);

    const callsOnC = () => channel.snapshot().endpoints.find((e) => e.address === c.address)?.calls;
    resolver.set([endpoint(a), endpoint(b)]);
    // Picks are synchronous: every call c will ever get was sent by now.
    const sentToCAtRemoval = callsOnC();
    let sentToCWhileDraining = sentToCAtRemoval;
    // c finishes what it has, then its connection goes away.
    await waitFor("c's connection to close", () => {
      const sent = callsOnC();
      if (sent === undefined) return true;
      sentToCWhileDraining = sent;
      return false;
    });
    expect(sentToCWhileDraining).toBe(sentToCAtRemoval);
    expect(c.inFlight()).toBe(0);
    const callsOnCAtRemoval = c.totalCalls();
    expect(callsOnCAtRemoval).toBe(sentToCAtRemoval);
    load.mark();
    await waitFor("20 more calls", () => [...load.since().values()].reduce((x, y) => x + y, 0) >= 20);
    const result = await load.stop();

    expect(result.failed).toBe(0);
    expect(c.totalCalls()).toBe(callsOnCAtRemoval);
    expect(load.since().has(c.address)).toBe(false);
    expect(result.byServer.get(c.address)).toBeGreaterThan(0);
  });

  it("sends calls to an endpoint as soon as it is added, and keeps serving when the resolver fails", async () => {
    backends = await Promise.all([24, 25].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
    const [a, b] = backends as [EchoBackend, EchoBackend];
    const resolver = createManualResolver([endpoint(a)]);
    await using channel = createChannel({ target: "static:///svc.test:80", resolver, balancer: "round-robin" });
    const client = createClient(EchoService, channel);
    const load = startLoad(() => client.echo({ message: "x" }), { concurrency: 2, intervalMs: 2 });
    await waitFor("calls on a", () => a.totalCalls() > 10);
    resolver.set([endpoint(a), endpoint(b)]);
    await waitFor("calls on b", () => b.totalCalls() > 10);
    resolver.fail(new Error("lookup timed out"));
    load.mark();
    await waitFor(
      "both still serving",
      () => (load.since().get(a.address) ?? 0) > 10 && (load.since().get(b.address) ?? 0) > 10,
    );
    expect((await load.stop()).failed).toBe(0);
  });

  it("p2c gives a newly added endpoint the measured latency of the others, not the default", async () => {
    backends = await Promise.all([29, 30, 31].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
    const [a, b, c] = backends as [EchoBackend, EchoBackend, EchoBackend];
    const resolver = createManualResolver([endpoint(a), endpoint(b)]);
    await using channel = createChannel({
      target: "static:///svc.test:80",
      resolver,
      balancer: "p2c",
      // A fast decay lets a and b's estimates settle within a second.
      loadOptions: { decayMs: 300 },
    });
    const client = createClient(EchoService, channel);
    const load = startLoad(() => client.echo({ message: "x" }), { concurrency: 2, intervalMs: 1 });
    await waitFor("a and b measured", () => channel.snapshot().endpoints.every((e) => e.latencyMs < 15));
    resolver.set([endpoint(a), endpoint(b), endpoint(c)]);
    // Seeded from a and b: a freshly scaled-up pod competes at once instead of
    // sitting idle until 30 ms decays (seconds, at the default 10 s decay).
    const seeded = channel.snapshot().endpoints.find((e) => e.address === c.address)?.latencyMs ?? 30;
    expect(seeded).toBeLessThan(20);
    await waitFor("c ready", () =>
      channel.snapshot().endpoints.some((e) => e.address === c.address && e.state === "ready"),
    );
    load.mark();
    await waitFor("300 more calls", () => [...load.since().values()].reduce((x, y) => x + y, 0) >= 300);
    const since = load.since();
    const total = [...since.values()].reduce((x, y) => x + y, 0);
    await load.stop();
    expect((since.get(c.address) ?? 0) / total).toBeGreaterThan(0.15);
  });

  it("takes no new calls on an endpoint the resolver marks draining", async () => {
    backends = await Promise.all([26, 27].map((n) => startEchoBackend({ host: `127.0.0.${n}`, delayMs: 50 })));
    const [a, b] = backends as [EchoBackend, EchoBackend];
    const resolver = createManualResolver([endpoint(a), endpoint(b)]);
    await using channel = createChannel({ target: "static:///svc.test:80", resolver });
    const client = createClient(EchoService, channel);
    // A call counts against draining only if it started after the resolver
    // marked b: calls already on the wire to b may still land there.
    let draining = false;
    let startedAfterDrainOnB = 0;
    const load = startLoad(
      async () => {
        const startedAfterDrain = draining;
        const response = await client.echo({ message: "x" });
        if (startedAfterDrain && response.server === b.address) startedAfterDrainOnB++;
        return response;
      },
      { concurrency: 4, intervalMs: 0 },
    );
    await waitFor("calls in flight on b", () => b.inFlight() > 0);
    resolver.set([endpoint(a), { ...endpoint(b), draining: true }]);
    draining = true;
    await waitFor("b drained", () => b.inFlight() === 0);
    load.mark();
    await waitFor("10 calls on a", () => (load.since().get(a.address) ?? 0) >= 10);
    expect((await load.stop()).failed).toBe(0);
    expect(startedAfterDrainOnB).toBe(0);
  });

  it("asks the resolver to refresh when a connection is lost", async () => {
    backends = [await startEchoBackend({ host: "127.0.0.28" })];
    const [a] = backends as [EchoBackend];
    const resolver = createManualResolver([endpoint(a)]);
    await using channel = createChannel({ target: "static:///svc.test:80", resolver, logger: silentLogger });
    await createClient(EchoService, channel).echo({ message: "x" });
    const before = resolver.refreshes;
    await a.kill();
    await waitFor("a refresh", () => resolver.refreshes > before);
  });
});
