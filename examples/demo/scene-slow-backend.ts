import { createClient } from "@connectrpc/connect";
import { quantile } from "../../bench/support/stats.js";
import { EchoService } from "../../gen/meshlite/echo/v1/echo_pb.js";
import { type BalancerName, type Channel, createChannel } from "../../src/index.js";
import { formatTable, ms, shareCell, startLiveView } from "./live-view.js";
import { createRecorder, type Recorder, runOpenLoop } from "./open-loop.js";
import type { DemoBackend, Scene } from "./scene.js";

/** Calls per second per client; two clients run side by side. */
const rate = 100;
const warmupMs = 2000;
const slowMs = 8000;
const extraDelayMs = 40;
const compared: BalancerName[] = ["round-robin", "p2c"];

interface Client {
  balancer: BalancerName;
  channel: Channel;
  record: Recorder;
  /** Calls started in each second of the slow phase: how many, and how many went to the slow backend. */
  seconds: Array<{ total: number; slow: number }>;
}

/**
 * A backend turns slow (a noisy neighbour, a GC storm, a cold cache). Round-robin
 * keeps sending it a quarter of the calls; p2c measures latency per backend
 * (peak-EWMA) and moves traffic away within a few calls, so its tail latency
 * stays low, while the three healthy backends keep equal shares.
 */
export const slowBackendScene: Scene = {
  title: "One backend turns slow",
  intro:
    `round-robin and p2c side by side, ${rate} calls/s each (open loop). After ${warmupMs / 1000} s one backend ` +
    `gets +${extraDelayMs} ms on every call; the table counts the ${slowMs / 1000} s that follow.`,
  async run(context) {
    const { backends } = context;
    const slow = backends[Math.min(2, backends.length - 1)] as DemoBackend;
    const target = `static:///${backends.map((b) => b.address).join(",")}`;
    const clients: Client[] = compared.map((balancer) => ({
      balancer,
      channel: context.track(createChannel({ target, balancer, logger: context.logger })),
      record: createRecorder(),
      seconds: [],
    }));
    let phase: "warming up" | "slow" | "done" = "warming up";
    // p2c's latency estimate per endpoint, kept once its channel is closed.
    const estimates = new Map<string, number>();
    let slowSince = Number.POSITIVE_INFINITY;
    const drive = (durationMs: number, pick: (c: Client) => Recorder) =>
      Promise.all(
        clients.map((c) => {
          const client = createClient(EchoService, c.channel);
          return runOpenLoop({
            rate,
            durationMs,
            call: async () => {
              const second = Math.floor((performance.now() - slowSince) / 1000);
              const response = await client.echo({ message: "hello" });
              if (second >= 0 && second < slowMs / 1000) {
                c.seconds[second] ??= { total: 0, slow: 0 };
                const bucket = c.seconds[second];
                bucket.total++;
                if (response.server === slow.address) bucket.slow++;
              }
              return response;
            },
            record: pick(c),
            signal: context.signal,
          });
        }),
      );

    const view = startLiveView({ frame: () => frame(clients, backends, slow, phase, estimates) });
    try {
      await drive(warmupMs, () => createRecorder());
      if (!context.signal.aborted) {
        await slow.process.setDelay(extraDelayMs);
        phase = "slow";
        slowSince = performance.now();
        await drive(slowMs, (c) => c.record);
      }
      phase = "done";
    } finally {
      view.stop();
      await slow.process.setDelay(0);
      await Promise.all(clients.map((c) => c.channel.close()));
    }
    const [rr, p2c] = clients as [Client, Client];
    const share = (c: Client) => slowPercent(c, slow).toFixed(1);
    return [
      ...frame(clients, backends, slow, phase, estimates).lines,
      `  Calls that still went to slow ${slow.host}: round-robin ${share(rr)}%, p2c ${share(p2c)}%.`,
      `  p99 latency: round-robin ${ms(quantile(rr.record.latencies, 0.99))}, p2c ${ms(quantile(p2c.record.latencies, 0.99))}.`,
      ...clients.filter((c) => c.record.errors > 0).map((c) => `  ${c.balancer}: first error: ${c.record.firstError}`),
    ];
  },
};

/** Percentage of a client's calls that the slow backend answered. */
function slowPercent(c: Client, slow: DemoBackend): number {
  return (100 * (c.record.byServer.get(slow.address) ?? 0)) / Math.max(1, c.record.total());
}

function frame(
  clients: Client[],
  backends: readonly DemoBackend[],
  slow: DemoBackend,
  phase: string,
  estimates: Map<string, number>,
) {
  const columns = backends.map((b) => (b === slow ? `${b.host} slow` : b.host));
  const shares = clients.map((c) => {
    const total = c.record.total();
    return [
      c.balancer,
      ...backends.map((b) => (total > 0 ? shareCell((c.record.byServer.get(b.address) ?? 0) / total) : "")),
      String(total),
    ];
  });
  // What p2c decides on: its latency estimate per endpoint.
  const snapshot = clients.find((c) => c.balancer === "p2c")?.channel.snapshot();
  if (snapshot && !snapshot.closed) {
    for (const e of snapshot.endpoints) estimates.set(e.address, e.latencyMs);
  }
  shares.push(["  p2c estimate", ...backends.map((b) => ms(estimates.get(b.address) ?? Number.NaN)), ""]);
  // Two narrow tables rather than one wide one: both fit an 80-column terminal.
  const latencies = clients.map((c) => [
    c.balancer,
    ...[0.5, 0.9, 0.99].map((q) => ms(quantile(c.record.latencies, q))),
  ]);
  const lines = [
    `  phase: ${phase}`,
    ...formatTable(["share of calls", ...columns, "calls"], shares),
    "",
    ...formatTable(["latency", "p50", "p90", "p99"], latencies),
    "",
    `  share of calls to ${slow.host}, second by second since it turned slow:`,
    ...clients.map(
      (c) =>
        `  ${c.balancer.padEnd(12)}${Array.from(c.seconds, (b) => (b ? `${Math.round((100 * b.slow) / Math.max(1, b.total))}%` : "-").padStart(5)).join("")}`,
    ),
  ];
  const status = clients
    .map(
      (c) =>
        `${c.balancer}: ${slowPercent(c, slow).toFixed(0)}% to slow, p99 ${ms(quantile(c.record.latencies, 0.99))}`,
    )
    .join(" | ");
  return { lines, status: `${phase}: ${status}` };
}
