// Zone-aware routing: six backends in three zones (a, a, b, b, c, c), the
// client in zone a; a call to another zone costs 1 ms more (the backends of
// zones b and c add it), as a cross-zone hop does. At a steady open-loop rate,
// compare locality on (prefer zone a, spill over under load) with plain p2c
// over every zone: the share of calls that cross zones and the p99, first
// with every zone healthy, then with zone a's pods slowed by 30 ms.
// Configurations run interleaved in short slices; figures are medians over rounds.
// Run: pnpm bench:locality
import { createClient } from "@connectrpc/connect";
import { type Channel, createChannel } from "meshlite";
import { createRecorder, runOpenLoop } from "../examples/demo/open-loop.js";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { startBackendGroup } from "../test/support/backend-process.js";
import { median, quantile } from "./support/stats.js";

const ratePerSecond = Number(process.env.RATE ?? 300);
const sliceMs = Number(process.env.SLICE_MS ?? 2000);
const rounds = Number(process.env.ROUNDS ?? 3);
const crossZoneMs = 1;
const slowDelayMs = 30;
const zones = ["a", "a", "b", "b", "c", "c"];

interface Slice {
  latencies: number[];
  crossZone: number;
  failed: number;
}

async function openLoop(channel: Channel, local: ReadonlySet<string>, ms: number): Promise<Slice> {
  const client = createClient(EchoService, channel);
  const record = createRecorder();
  await runOpenLoop({
    rate: ratePerSecond,
    durationMs: ms,
    call: () => client.echo({ message: "x" }),
    record,
    latencyFromSchedule: true,
  });
  let crossZone = 0;
  for (const [server, n] of record.byServer) if (!local.has(server)) crossZone += n;
  return { latencies: record.latencies, crossZone, failed: record.errors };
}

async function main() {
  const backends = await startBackendGroup(zones.map((_, i) => `127.0.7.${i + 1}`));
  const local = new Set(backends.filter((_, i) => zones[i] === "a").map((b) => b.address));
  await Promise.all(backends.map((b, i) => (zones[i] === "a" ? undefined : b.setDelay(crossZoneMs))));
  const target = `static:///${backends.map((b) => b.address).join(",")}`;
  const endpointZones = Object.fromEntries(backends.map((b, i) => [b.address, zones[i] as string]));
  const configs: Array<{ name: string; channel: Channel }> = [
    {
      name: "locality on (zone a)",
      channel: createChannel({ target, locality: { zone: "a", prefer: "zone", endpointZones } }),
    },
    { name: "plain p2c, all zones", channel: createChannel({ target, locality: false }) },
  ];
  const rows: string[] = [];
  async function scenario(name: string, warmupMs: number) {
    for (const c of configs) await openLoop(c.channel, local, warmupMs);
    const results = new Map<string, { p50: number[]; p99: number[]; cross: number[]; failed: number }>();
    for (let round = 0; round < rounds; round++) {
      for (const c of configs) {
        const s = await openLoop(c.channel, local, sliceMs);
        const r = results.get(c.name) ?? { p50: [], p99: [], cross: [], failed: 0 };
        r.p50.push(quantile(s.latencies, 0.5));
        r.p99.push(quantile(s.latencies, 0.99));
        r.cross.push(s.crossZone / Math.max(1, s.latencies.length));
        r.failed += s.failed;
        results.set(c.name, r);
      }
    }
    const plainP99 = median(results.get("plain p2c, all zones")?.p99 ?? []);
    for (const [config, r] of results) {
      rows.push(
        `${name.padEnd(24)} ${config.padEnd(22)} ${`${(median(r.cross) * 100).toFixed(1)}%`.padStart(11)} ${median(r.p50).toFixed(2).padStart(7)} ${median(r.p99).toFixed(2).padStart(8)} ${(median(r.p99) / plainP99).toFixed(2).padStart(13)} ${String(r.failed).padStart(7)}`,
      );
    }
    const state = configs[0]?.channel.snapshot().locality;
    rows.push(`${"".padEnd(24)} (locality: ${state?.state}, ${state?.reason})`);
  }
  try {
    await scenario("every zone healthy", 2000);
    await Promise.all(backends.filter((b) => local.has(b.address)).map((b) => b.setDelay(slowDelayMs)));
    // Long enough for the policy to notice and spill (about a second), and to settle.
    await scenario(`zone a +${slowDelayMs} ms`, 2500);
    console.log(
      `\nSix backends in zones a, a, b, b, c, c; client in zone a; +${crossZoneMs} ms per cross-zone call; open loop at ${ratePerSecond} calls/s; ${rounds} rounds of ${sliceMs} ms slices, medians`,
    );
    console.log("scenario                 configuration          cross-zone  p50 ms   p99 ms   p99 / plain   failed");
    for (const row of rows) console.log(row);
  } finally {
    await Promise.all(configs.map((c) => c.channel.close()));
    await backends[0]?.kill();
  }
}

await main();
