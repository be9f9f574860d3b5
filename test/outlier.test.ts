import { Code, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { waitFor } from "./support/wait-for.js";

let backends: EchoBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

describe("outlier detection", () => {
  it("ejects a backend that fails every call after the threshold, and lets it back after the ejection time", async () => {
    backends = await Promise.all([1, 2, 3, 4].map((n) => startEchoBackend({ host: `127.0.4.${n}` })));
    const bad = backends[0] as EchoBackend;
    bad.setFailCode(Code.Internal);
    const events: string[] = [];
    await using channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      balancer: "round-robin",
      outlierDetection: { consecutiveFailures: 5, baseEjectionMs: 1500, failureRate: false },
      onEvent: (e) => {
        if (e.type === "endpoint-ejected" || e.type === "endpoint-returned") events.push(`${e.type} ${e.address}`);
      },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    await waitFor("all ready", () => channel.snapshot().endpoints.every((e) => e.state === "ready"));
    let failures = 0;
    for (let i = 0; i < 40; i++) {
      await client.echo({ message: "x" }).catch(() => failures++);
    }
    // Exactly the threshold: the 5th failure ejects it, no call reaches it after.
    expect(failures).toBe(5);
    expect(bad.totalCalls()).toBe(5);
    expect(events).toEqual([`endpoint-ejected ${bad.address}`]);
    expect(channel.snapshot().endpoints.find((e) => e.address === bad.address)).toMatchObject({
      ejected: true,
      ejections: 1,
    });

    bad.setFailCode(0);
    await waitFor("the ejection to end", () => events.includes(`endpoint-returned ${bad.address}`), {
      timeoutMs: 10_000,
    });
    // Back with slow start (on by default): a tenth of its weight at first, so a weighted
    // rotation reaches it within about 30 calls.
    expect(channel.snapshot().endpoints.find((e) => e.address === bad.address)?.effectiveWeight).toBeLessThan(0.5);
    for (let i = 0; i < 60; i++) await client.echo({ message: "x" });
    expect(bad.totalCalls()).toBeGreaterThan(5);
  });

  it("never ejects more than the maximum share, so a broken fleet keeps being tried", async () => {
    backends = await Promise.all([5, 6, 7, 8].map((n) => startEchoBackend({ host: `127.0.4.${n}` })));
    for (const b of backends.slice(0, 3)) b.setFailCode(Code.Unavailable);
    await using channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      balancer: "round-robin",
      outlierDetection: { consecutiveFailures: 2, maxEjectionPercent: 50, failureRate: false },
      retry: { idempotent: false },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    await waitFor("all ready", () => channel.snapshot().endpoints.every((e) => e.state === "ready"));
    for (let i = 0; i < 60; i++) await client.echo({ message: "x" }).catch(() => {});
    const ejected = channel.snapshot().endpoints.filter((e) => e.ejected);
    expect(ejected).toHaveLength(2);
    // The third broken one still gets calls: 50% is the limit.
    const stillTried = backends.slice(0, 3).filter((b) => !ejected.some((e) => e.address === b.address));
    expect(stillTried).toHaveLength(1);
    expect(stillTried[0]?.totalCalls()).toBeGreaterThan(5);
  });

  it("ejects a failure-rate outlier that never fails five times in a row", async () => {
    backends = await Promise.all([9, 10, 11, 12, 13].map((n) => startEchoBackend({ host: `127.0.4.${n}` })));
    const flaky = backends[0] as EchoBackend;
    flaky.setFailEvery(2, Code.Unavailable);
    await using channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      balancer: "round-robin",
      outlierDetection: { failureRate: { intervalMs: 1000, minimumCalls: 10 } },
      retry: { idempotent: false },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    await waitFor("all ready", () => channel.snapshot().endpoints.every((e) => e.state === "ready"));
    await waitFor(
      "the flaky backend to be ejected",
      async () => {
        await client.echo({ message: "x" }).catch(() => {});
        return channel.snapshot().endpoints.find((e) => e.address === flaky.address)?.ejected;
      },
      { timeoutMs: 15_000, intervalMs: 2 },
    );
    expect(channel.snapshot().endpoints.filter((e) => e.ejected)).toHaveLength(1);
  });
});

describe("p2c and fast failures", () => {
  it("a backend that fails fast does not draw more than its share", async () => {
    backends = await Promise.all([14, 15, 16, 17].map((n) => startEchoBackend({ host: `127.0.4.${n}`, delayMs: 5 })));
    const bad = backends[0] as EchoBackend;
    bad.setFailEvery(2, Code.Unavailable);
    await using channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      balancer: "p2c",
      outlierDetection: false,
      retry: { idempotent: false },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    await waitFor("all ready", () => channel.snapshot().endpoints.every((e) => e.state === "ready"));
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 100; i++) await client.echo({ message: "x" }).catch(() => {});
      }),
    );
    // Its failures answer in well under the others' 5 ms; as plain latency samples they would make it
    // the cheapest endpoint and draw more than the fair 25%. Counted as slow calls, they push it away.
    expect(bad.totalCalls()).toBeLessThan(400 * 0.15);
  });
});
