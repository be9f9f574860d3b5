// One of five backends adds 30 ms. At a steady open-loop rate well under what
// the machine serves, compare p99 latency of p2c and round-robin over all five
// against round-robin over the four healthy ones alone, and the share of calls
// p2c still sends to the slow one. Configurations run interleaved in short
// slices; the figures are medians over rounds.
// Run: pnpm bench:slow
import { createClient } from "@connectrpc/connect";
import { type Channel, createChannel } from "meshlite";
import { createRecorder, runOpenLoop } from "../examples/demo/open-loop.js";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type BackendProcess, startBackendProcess } from "../test/support/backend-process.js";
import { median, quantile } from "./support/stats.js";

const ratePerSecond = Number(process.env.RATE ?? 250);
const sliceMs = Number(process.env.SLICE_MS ?? 2000);
const rounds = Number(process.env.ROUNDS ?? 5);
const slowDelayMs = 30;

interface Slice {
  latencies: number[];
  slowCalls: number;
  failed: number;
}

/** Sends calls at a fixed rate for `ms`; latency counts from each call's scheduled time. */
async function openLoop(channel: Channel, slowAddress: string, ms: number): Promise<Slice> {
  const client = createClient(EchoService, channel);
  const record = createRecorder();
  await runOpenLoop({
    rate: ratePerSecond,
    durationMs: ms,
    call: () => client.echo({ message: "x" }),
    record,
    latencyFromSchedule: true,
  });
  return { latencies: record.latencies, slowCalls: record.byServer.get(slowAddress) ?? 0, failed: record.errors };
}

async function main() {
  const backends = await Promise.all(
    [1, 2, 3, 4, 5].map((n) => startBackendProcess(`127.0.6.${n}`, { delayMs: n === 1 ? slowDelayMs : 0 })),
  );
  const slow = backends[0] as BackendProcess;
  const all = `static:///${backends.map((b) => b.address).join(",")}`;
  const healthy = `static:///${backends
    .slice(1)
    .map((b) => b.address)
    .join(",")}`;
  const configs: Array<{ name: string; channel: Channel }> = [
    { name: "p2c, 5 backends (1 slow)", channel: createChannel({ target: all, balancer: "p2c" }) },
    { name: "round-robin, 5 backends (1 slow)", channel: createChannel({ target: all, balancer: "round-robin" }) },
    { name: "round-robin, 4 healthy only", channel: createChannel({ target: healthy, balancer: "round-robin" }) },
  ];
  try {
    // Warm up: connections, JIT, p2c's latency estimates.
    for (const c of configs) await openLoop(c.channel, slow.address, 1000);
    const results = new Map<string, { p50: number[]; p99: number[]; slowShare: number[]; failed: number }>();
    for (let round = 0; round < rounds; round++) {
      for (const c of configs) {
        const s = await openLoop(c.channel, slow.address, sliceMs);
        const r = results.get(c.name) ?? { p50: [], p99: [], slowShare: [], failed: 0 };
        r.p50.push(quantile(s.latencies, 0.5));
        r.p99.push(quantile(s.latencies, 0.99));
        r.slowShare.push(s.slowCalls / s.latencies.length);
        r.failed += s.failed;
        results.set(c.name, r);
      }
    }
    const healthyP99 = median(results.get("round-robin, 4 healthy only")?.p99 ?? []);
    console.log(
      `\nOne slow backend (+${slowDelayMs} ms) of five; open loop at ${ratePerSecond} calls/s; ${rounds} rounds of ${sliceMs} ms slices, medians`,
    );
    console.log("configuration                       p50 ms   p99 ms   p99 / healthy-only   calls to slow   failed");
    for (const [name, r] of results) {
      console.log(
        `${name.padEnd(34)} ${median(r.p50).toFixed(2).padStart(7)} ${median(r.p99).toFixed(2).padStart(8)} ${(median(r.p99) / healthyP99).toFixed(2).padStart(20)} ${`${(median(r.slowShare) * 100).toFixed(1)}%`.padStart(15)} ${String(r.failed).padStart(8)}`,
      );
    }
    const p2c = results.get("p2c, 5 backends (1 slow)");
    if (p2c) {
      // The goal of the fair-p2c work: p99 within 1.5x of the healthy-only p99 plus 2 ms.
      const p99 = median(p2c.p99);
      const bound = 1.5 * healthyP99 + 2;
      console.log(
        `\ngoal: p2c p99 within 1.5x of healthy-only + 2 ms (${p99.toFixed(2)} ms against ${bound.toFixed(2)} ms: ${p99 <= bound ? "met" : "NOT met"}), slow backend under 5% of calls (${(median(p2c.slowShare) * 100).toFixed(1)}%: ${median(p2c.slowShare) < 0.05 ? "met" : "NOT met"})`,
      );
    }
  } finally {
    await Promise.all(configs.map((c) => c.channel.close()));
    await Promise.all(backends.map((b) => b.kill()));
  }
}

await main();
