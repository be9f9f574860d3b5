import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { waitFor } from "./support/wait-for.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function backendWithLimit(host: string, maxConcurrentStreams: number): Promise<EchoBackend> {
  const backend = await startEchoBackend({ host, delayMs: 200, maxConcurrentStreams });
  cleanups.push(() => backend.kill());
  return backend;
}

describe("an endpoint's stream limit (SETTINGS_MAX_CONCURRENT_STREAMS)", () => {
  it("opens more connections when the calls reach it, up to the cap, and closes the extra ones when idle", async () => {
    const backend = await backendWithLimit("127.0.10.1", 10);
    const channel = createChannel({
      target: `static:///${backend.address}`,
      logger: silentLogger,
      extraConnectionIdleMs: 300,
    });
    cleanups.push(() => channel.close());
    const client = createClient(EchoService, channel);
    await client.echo({ message: "warm" });
    expect(backend.openConnections()).toBe(1);

    // 50 calls in flight for 2 s: each worker sends its next call when the last one ends.
    let peak = 0;
    let peakConnections = 0;
    const watch = setInterval(() => {
      peak = Math.max(peak, backend.inFlight());
      peakConnections = Math.max(peakConnections, backend.openConnections());
    }, 5);
    cleanups.push(async () => clearInterval(watch));
    const until = performance.now() + 2000;
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, async () => {
        while (performance.now() < until) await client.echo({ message: "x" });
      }),
    );
    clearInterval(watch);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    // Four connections of 10 streams each: more than one connection's worth ran at once.
    expect(peak).toBeGreaterThan(10);
    expect(peak).toBeLessThanOrEqual(40);
    // Up to the cap (maxConnectionsPerEndpoint, 4 by default), never beyond it.
    expect(peakConnections).toBe(4);
    expect(channel.snapshot().endpoints[0]?.connections).toBeGreaterThan(1);
    await waitFor("the extra connections to close", () => backend.openConnections() === 1, { timeoutMs: 10_000 });
    expect(channel.snapshot().endpoints[0]?.connections).toBe(1);
  });

  it("keeps one connection (calls wait behind the limit) with maxConnectionsPerEndpoint: 1", async () => {
    const backend = await backendWithLimit("127.0.10.2", 10);
    const channel = createChannel({
      target: `static:///${backend.address}`,
      logger: silentLogger,
      maxConnectionsPerEndpoint: 1,
    });
    cleanups.push(() => channel.close());
    const client = createClient(EchoService, channel);
    let peak = 0;
    const watch = setInterval(() => {
      peak = Math.max(peak, backend.inFlight());
    }, 5);
    cleanups.push(async () => clearInterval(watch));
    const results = await Promise.allSettled(Array.from({ length: 30 }, () => client.echo({ message: "x" })));
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    expect(peak).toBeLessThanOrEqual(10);
    expect(backend.openConnections()).toBe(1);
  });

  it("spreads calls over minConnectionsPerEndpoint connections to a single address", async () => {
    const backend = await backendWithLimit("127.0.10.3", 100);
    const channel = createChannel({
      target: `static:///${backend.address}`,
      logger: silentLogger,
      minConnectionsPerEndpoint: 3,
    });
    cleanups.push(() => channel.close());
    const client = createClient(EchoService, channel);
    await client.echo({ message: "warm" });
    await waitFor("three connections", () => backend.openConnections() === 3);
    const perSession = new Map<unknown, number>();
    backend.server.on("stream", (stream) => {
      perSession.set(stream.session, (perSession.get(stream.session) ?? 0) + 1);
    });
    await Promise.all(Array.from({ length: 30 }, () => client.echo({ message: "x" })));
    expect([...perSession.values()].sort((a, b) => a - b)).toEqual([10, 10, 10]);
  });

  it("rejects connection counts out of range, naming the option", () => {
    expect(() => createChannel({ target: "static:///127.0.0.1:1", minConnectionsPerEndpoint: 0 })).toThrow(
      /createChannel: minConnectionsPerEndpoint must be a whole number from 1 to 64, got 0/,
    );
    expect(() =>
      createChannel({ target: "static:///127.0.0.1:1", minConnectionsPerEndpoint: 5, maxConnectionsPerEndpoint: 2 }),
    ).toThrow(/minConnectionsPerEndpoint \(5\) must not exceed maxConnectionsPerEndpoint \(2\)/);
  });
});
