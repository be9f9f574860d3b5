// Slow start and the overload penalty, each as a ratio against the same run
// without it (issue 14). Channels with and without the feature run at the
// same time over the same backends (one backend process), so they see the
// same cold pod, the same shedding and the same machine noise; figures are
// medians over rounds.
//
// - Join: four warm backends, a fifth joins that is +40 ms slow falling to 0
//   over 10 s; p99 over those 10 s, against a control channel that stays on
//   the four warm ones (the steady p99 under the same noise).
// - Shed: one of four backends answers 50% of its calls with
//   RESOURCE_EXHAUSTED at once; its share of calls and the error rate.
//
// Run: pnpm bench:slow-start [--rounds 2] [--rate 60]   (about 50 s)
import type { ChannelOptions } from "meshlite";
import { type BackendProcess, startBackendGroup } from "../test/support/backend-process.js";
import {
  type JoinResult,
  runJoinScenario,
  runShedScenario,
  type ShedResult,
} from "../test/support/warmup-scenarios.js";
import { parseArgs } from "./support/args.js";
import { median } from "./support/stats.js";

const { rounds, rate } = parseArgs({ rounds: 2, rate: 60 }, "tsx bench/slow-start.ts [--rounds 2] [--rate 60]");

const joinConfigs: Array<{ label: string; options: Partial<ChannelOptions>; join?: boolean }> = [
  { label: "p2c, slow start", options: { slowStart: { windowMs: 10_000 } } },
  { label: "p2c, no slow start", options: { slowStart: false } },
  { label: "round-robin, slow start", options: { balancer: "round-robin", slowStart: { windowMs: 10_000 } } },
  { label: "round-robin, no slow start", options: { balancer: "round-robin", slowStart: false } },
  { label: "steady: 4 warm only", options: {}, join: false },
];
const shedConfigs: Array<{ label: string; options: Partial<ChannelOptions> }> = [
  { label: "p2c, overload penalty", options: {} },
  { label: "p2c, overloadPenalty: false", options: { overloadPenalty: false } },
];

async function main() {
  const join: BackendProcess[] = await startBackendGroup([1, 2, 3, 4, 5].map((n) => `127.0.15.${n}`));
  const shed: BackendProcess[] = await startBackendGroup([11, 12, 13, 14].map((n) => `127.0.15.${n}`));
  const joins: JoinResult[][] = [];
  const sheds: ShedResult[][] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      joins.push(await runJoinScenario(join, joinConfigs, { rate }));
      // The cold backend is cold again next round: it leaves the set with the round's channels.
      sheds.push(await runShedScenario(shed, shedConfigs, { rate, ms: 5000 }));
    }
  } finally {
    await Promise.all([...join, ...shed].map((b) => b.kill()));
  }
  const joinOf = (label: string) => joins.map((r) => r.find((x) => x.label === label) as JoinResult);
  const steady = joinOf("steady: 4 warm only");
  console.log(
    `\nA cold backend (+40 ms falling to 0 over 10 s) joins four warm ones; ${rate} calls/s per channel, slow start window 10 s; median of ${rounds} rounds`,
  );
  console.log("configuration                     p99 ms   p99 / steady   cold share 0-2 s   cold share 8-10 s");
  for (const { label } of joinConfigs) {
    const rs = joinOf(label);
    const p99 = median(rs.map((r) => r.windowP99));
    const ratio = median(rs.map((r, i) => r.windowP99 / (steady[i] as JoinResult).windowP99));
    console.log(
      `${label.padEnd(32)} ${p99.toFixed(1).padStart(7)} ${ratio.toFixed(2).padStart(14)} ${`${median(rs.map((r) => r.shares[0] as number)).toFixed(1)}%`.padStart(18)} ${`${median(rs.map((r) => r.shares[4] as number)).toFixed(1)}%`.padStart(19)}`,
    );
  }
  for (const balancer of ["p2c", "round-robin"]) {
    const on = joinOf(`${balancer}, slow start`);
    const off = joinOf(`${balancer}, no slow start`);
    const ratio = median(on.map((r, i) => r.windowP99 / (off[i] as JoinResult).windowP99));
    console.log(`${balancer}: p99 with slow start / without (same run): ${ratio.toFixed(2)}`);
  }
  const shedOf = (label: string) => sheds.map((r) => r.find((x) => x.label === label) as ShedResult);
  const on = shedOf("p2c, overload penalty");
  const off = shedOf("p2c, overloadPenalty: false");
  console.log(
    `\nOne of four backends answers 50% with RESOURCE_EXHAUSTED at once; ${rate} calls/s, 5 s; median of ${rounds} rounds`,
  );
  console.log("configuration                     share to shedding   calls failed");
  for (const [label, rs] of [
    ["p2c, overload penalty", on],
    ["p2c, overloadPenalty: false", off],
  ] as const) {
    console.log(
      `${label.padEnd(32)} ${`${median(rs.map((r) => r.share)).toFixed(1)}%`.padStart(18)} ${`${median(rs.map((r) => r.errorRate)).toFixed(1)}%`.padStart(14)}`,
    );
  }
  const shareRatio = median(on.map((r, i) => r.share / Math.max(0.01, (off[i] as ShedResult).share)));
  const errorRatio = median(on.map((r, i) => r.errorRate / Math.max(0.01, (off[i] as ShedResult).errorRate)));
  console.log(
    `overload penalty / without (same run): share ${shareRatio.toFixed(2)}, error rate ${errorRatio.toFixed(2)}`,
  );
}

await main();
