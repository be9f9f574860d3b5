// Subsetting against real backends on loopback (issue 15): 6 channels over
// 24 backends with subset 6, each channel at a fixed rank of 6. Every channel
// connects to its aperture only, the backends get even shares of all calls
// (within 10% of the mean), and a backend that crashes mid-run costs no
// idempotent call and is replaced by another backend in every subset that
// held it.
import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { type Channel, createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type BackendProcess, startBackendGroup } from "./support/backend-process.js";
import { type Load, startLoad } from "./support/load.js";
import { waitFor } from "./support/wait-for.js";

const clients = 6;
const size = 6;
// 500 calls per backend: p2c's shares follow the weights to within a few
// percent (calls in flight, then recent call rates per weight, decide).
const calls = 12_000;
let backends: BackendProcess[] = [];
let channels: Channel[] = [];
afterEach(async () => {
  await Promise.all(channels.map((c) => c.close()));
  await Promise.all(backends.map((b) => b.kill()));
  backends = [];
  channels = [];
});

function held(channel: Channel) {
  return channel.snapshot().endpoints.filter((e) => e.connections > 0 || e.state !== "idle");
}

describe("subset on loopback: 6 channels x 24 backends, subset 6", () => {
  it("connects each channel to its aperture only, spreads calls evenly, and loses no idempotent call when a backend crashes (it is replaced)", async () => {
    // All 24 in one process, so that they are equally fast (p2c sends more to a
    // faster backend, as it should); the victim crashes by itself.
    backends = await startBackendGroup(Array.from({ length: 24 }, (_, i) => `127.0.70.${i + 1}`));
    const victim = backends[23] as BackendProcess;
    const target = `static:///${backends.map((b) => b.address).join(",")}`;
    channels = Array.from({ length: clients }, (_, rank) =>
      createChannel({
        target,
        subset: { size, minEndpoints: 0, rank, count: clients },
        logger: silentLogger,
      }),
    );
    for (const channel of channels) {
      await waitFor("the subset's members ready", () => {
        const snap = channel.snapshot();
        const members = new Set(snap.subset?.members.map((m) => m.address));
        return members.size > 0 && snap.endpoints.every((e) => (e.state === "ready") === members.has(e.address));
      });
    }
    const perClient = channels.map((c) => held(c).length);
    for (const channel of channels) {
      const snap = channel.snapshot();
      expect(snap.subset?.mode).toBe("aperture");
      const members = new Set(snap.subset?.members.map((m) => m.address));
      // Nothing outside the subset is connected.
      for (const e of snap.endpoints) if (!members.has(e.address)) expect(e.connections).toBe(0);
    }
    expect(Math.max(...perClient)).toBeLessThanOrEqual(size + 1);
    const victimMembers = channels.filter((c) =>
      c.snapshot().subset?.members.some((m) => m.address === victim.address),
    ).length;
    expect(victimMembers).toBeGreaterThan(0);

    const loads: Load[] = channels.map((channel) => {
      const client = createClient(EchoService, channel);
      return startLoad(() => client.echoIdempotent({ message: "x" }, { timeoutMs: 10_000 }), {
        concurrency: 3,
        intervalMs: 1,
      });
    });
    const total = () => loads.reduce((n, l) => n + l.result.ok + l.result.failed, 0);
    await waitFor(`${calls} calls`, () => total() >= calls, { timeoutMs: 240_000 });
    const byServer = new Map<string, number>();
    for (const l of loads) for (const [s, n] of l.result.byServer) byServer.set(s, (byServer.get(s) ?? 0) + n);
    const shares = backends.map((b) => byServer.get(b.address) ?? 0);
    const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
    const deviation = Math.max(...shares.map((n) => Math.abs(n - mean) / mean));
    const cv = Math.sqrt(shares.reduce((a, n) => a + (n - mean) ** 2, 0) / shares.length) / mean;
    console.log(
      `connections per channel: ${perClient.join(", ")}; calls per backend: min ${Math.min(...shares)}, max ${Math.max(...shares)}, mean ${mean.toFixed(0)}, CV ${cv.toFixed(3)}, max deviation ${(deviation * 100).toFixed(1)}%`,
    );
    expect(deviation).toBeLessThanOrEqual(0.1);

    // A backend dies with calls in flight: the idempotent ones are retried on the other members.
    const before = total();
    await victim.crash();
    const holders = channels.filter((c) => c.snapshot().subset?.members.some((m) => m.address === victim.address));
    // Each subset that held it takes the next backend past its aperture, and keeps six working members.
    const substituteReady = (channel: Channel) => {
      const snap = channel.snapshot();
      const substitute = snap.subset?.members.find((m) => m.replaces === victim.address);
      return snap.endpoints.some((e) => e.address === substitute?.address && e.state === "ready");
    };
    for (const channel of holders) await waitFor("a substitute for the dead backend", () => substituteReady(channel));
    for (const channel of holders) {
      const snap = channel.snapshot();
      const ready = new Set(snap.endpoints.filter((e) => e.state === "ready").map((e) => e.address));
      expect(snap.subset?.members.filter((m) => ready.has(m.address))).toHaveLength(size);
      expect(snap.subset?.failing).toEqual([victim.address]);
    }
    await waitFor("3000 more calls", () => total() >= before + 3000, { timeoutMs: 120_000 });
    const results = await Promise.all(loads.map((l) => l.stop()));
    const errors = results.flatMap((r) => r.errors);
    expect(errors).toEqual([]);
    for (const channel of channels) {
      const dead = channel.snapshot().endpoints.find((e) => e.address === victim.address);
      expect(dead?.state).not.toBe("ready");
    }
  });
});
