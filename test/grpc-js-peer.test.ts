import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type GrpcJsBackend, startGrpcJsBackend } from "./support/grpc-js-backend.js";
import { startLoad } from "./support/load.js";
import { waitFor } from "./support/wait-for.js";

let backends: GrpcJsBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

describe("@grpc/grpc-js servers as backends", () => {
  it("rotating every connection each second (max_connection_age) costs no call over 30 s", async () => {
    backends = await Promise.all(
      [1, 2, 3].map((n) =>
        startGrpcJsBackend(`127.0.2.${n}`, {
          "grpc.max_connection_age_ms": 1000,
          "grpc.max_connection_age_grace_ms": 5000,
        }),
      ),
    );
    // Round-robin, so that "every backend keeps being used" does not depend on
    // how p2c reads latency on a noisy machine.
    // Connection states over the run, shown when a backend serves too little (to tell why).
    const states: string[] = [];
    const t0 = performance.now();
    await using channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      balancer: "round-robin",
      logger: silentLogger,
      onEvent: (e) => {
        const at = ((performance.now() - t0) / 1000).toFixed(2);
        if (e.type === "endpoint-state") {
          states.push(`${at}s ${e.address} ${e.state}${e.error ? ` (${e.error.message})` : ""}`);
        } else if (e.type === "endpoint-ejected" || e.type === "endpoint-returned") {
          states.push(`${at}s ${e.address} ${e.type}`);
        }
      },
    });
    const client = createClient(EchoService, channel);
    const load = startLoad(() => client.echo({ message: "x", delayMs: 5 }), { concurrency: 8, intervalMs: 5 });
    const started = Date.now();
    await waitFor("30 s of load", () => Date.now() - started >= 30_000, { timeoutMs: 40_000, intervalMs: 500 });
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.ok).toBeGreaterThan(2000);
    // Each backend is out for a moment at every rotation, so shares swing; every one keeps serving.
    for (const b of backends) {
      const log = states.filter((line) => line.includes(b.address)).slice(-30);
      expect(
        result.byServer.get(b.address),
        `${b.address}; its last connection states and ejections:\n${log.join("\n")}`,
      ).toBeGreaterThan(result.ok / 10);
    }
  }, 60_000);

  it("health checking: NOT_SERVING takes an endpoint out within a second, SERVING brings it back", async () => {
    backends = await Promise.all([4, 5].map((n) => startGrpcJsBackend(`127.0.2.${n}`)));
    const [a, b] = backends as [GrpcJsBackend, GrpcJsBackend];
    const events: string[] = [];
    await using channel = createChannel({
      target: `static:///${a.address},${b.address}`,
      healthCheck: { service: "" },
      onEvent: (e) => {
        if (e.type === "endpoint-health") events.push(`${e.address} ${e.status}`);
      },
    });
    const client = createClient(EchoService, channel);
    const load = startLoad(() => client.echo({ message: "x" }), { concurrency: 2, intervalMs: 5 });
    await waitFor("both serving", () => channel.snapshot().endpoints.every((e) => e.health === "serving"));
    await waitFor("calls on b", () => (load.since().get(b.address) ?? 0) > 5);

    a.health.setStatus("", "NOT_SERVING");
    const flipped = Date.now();
    await waitFor(
      "a out",
      () => channel.snapshot().endpoints.find((e) => e.address === a.address)?.health === "not-serving",
    );
    expect(Date.now() - flipped).toBeLessThan(1000);
    load.mark();
    await waitFor("20 calls", () => (load.since().get(b.address) ?? 0) >= 20);
    expect(load.since().get(a.address) ?? 0).toBe(0);

    a.health.setStatus("", "SERVING");
    const back = Date.now();
    await waitFor("calls on a again", () => (load.since().get(a.address) ?? 0) > 0);
    expect(Date.now() - back).toBeLessThan(1000);
    expect((await load.stop()).failed).toBe(0);
    expect(events).toContain(`${a.address} not-serving`);
  });

  it("health checking: a server without the health service is used anyway, with checking off for it", async () => {
    backends = [await startGrpcJsBackend("127.0.2.6", {}, { withHealth: false })];
    const infos: string[] = [];
    await using channel = createChannel({
      target: `static:///${backends[0]?.address}`,
      healthCheck: { service: "" },
      logger: { ...silentLogger, info: (m) => infos.push(m) },
    });
    expect((await createClient(EchoService, channel).echo({ message: "x" })).server).toBe(backends[0]?.address);
    expect(channel.snapshot().endpoints[0]?.health).toBe("disabled");
    expect(infos.filter((m) => m.includes("does not implement grpc.health.v1.Health/Watch"))).toHaveLength(1);
  });
});
