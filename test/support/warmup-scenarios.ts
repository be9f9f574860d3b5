// Two scenarios of issue 14, shared by test/slow-start.test.ts,
// test/overload.test.ts and bench/slow-start.ts. Each runs several channels
// over the SAME backends at the same time (one with the feature, one
// without), so they see the same cold pod, the same shedding and the same
// machine noise.
import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { type Channel, type ChannelOptions, createChannel } from "meshlite";
import { createRecorder, type Recorder, runOpenLoop } from "../../examples/demo/open-loop.js";
import { EchoService } from "../../gen/meshlite/echo/v1/echo_pb.js";
import type { BackendProcess } from "./backend-process.js";
import { createManualResolver } from "./manual-resolver.js";
import { waitFor } from "./wait-for.js";

/** The q-quantile (nearest rank) of a list; NaN when empty. */
export function quantileOf(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
}

async function allReady(channel: Channel, count: number) {
  await waitFor(`${count} endpoints ready`, () => {
    const endpoints = channel.snapshot().endpoints.filter((e) => !e.draining);
    return endpoints.length === count && endpoints.every((e) => e.state === "ready");
  });
}

/** Open-loop echo calls on `channel` at `rate` per second for `ms`, with their start times. */
async function drive(channel: Channel, rate: number, ms: number) {
  const client = createClient(EchoService, channel);
  const record: Recorder = createRecorder();
  const calls: Array<{ at: number; server: string }> = [];
  const start = performance.now();
  await runOpenLoop({
    rate,
    durationMs: ms,
    record,
    call: async () => {
      const at = performance.now() - start;
      const response = await client.echo({ message: "x" });
      calls.push({ at, server: response.server });
      return response;
    },
  });
  return { record, calls };
}

/** One channel's figures in the join scenario. */
export interface JoinResult {
  label: string;
  /** p99 in ms over the window after the cold backend joined (or would have, for a control). */
  windowP99: number;
  /** The cold backend's share of calls, in percent, per fifth of the window. */
  shares: number[];
  /** The cold backend's effective weight (snapshot) early in each fifth of the window (a fifth the event loop stalled through is left out). */
  weights: number[];
  errors: number;
}

/**
 * Four warm backends, then a fifth joins that is slow for its first
 * `warmupMs` (+`extraMs`, falling to 0): each config's channel runs its own
 * open loop of `rate` calls/s through the join. `backends[4]` is the cold
 * one. A config with `join: false` is a control: it stays on the four warm
 * ones, so its p99 is the steady p99 under the same machine noise.
 */
export async function runJoinScenario(
  backends: BackendProcess[],
  configs: Array<{ label: string; options: Partial<ChannelOptions>; join?: boolean }>,
  { rate = 100, warmupMs = 10_000, extraMs = 40 } = {},
): Promise<JoinResult[]> {
  const endpoints = backends.map((b) => ({ host: b.host, port: b.port }));
  const cold = backends[4] as BackendProcess;
  const opened = configs.map((c) => {
    const resolver = createManualResolver(endpoints.slice(0, 4));
    const channel = createChannel({ target: "static:///svc.test:80", logger: silentLogger, ...c.options, resolver });
    return { ...c, resolver, channel };
  });
  try {
    await Promise.all(opened.map((o) => allReady(o.channel, 4)));
    // Warm-up: connections, JIT, estimates.
    await Promise.all(opened.map((o) => drive(o.channel, rate, 1500)));
    await cold.setWarmup(extraMs, warmupMs);
    for (const o of opened) if (o.join !== false) o.resolver.set(endpoints);
    const joinedAt = performance.now();
    const weights = opened.map(() => [] as number[]);
    // The weight at the first look in each fifth (a stalled event loop may skip one).
    const sampler = setInterval(() => {
      const k = Math.floor(((performance.now() - joinedAt) / warmupMs) * 5);
      opened.forEach((o, i) => {
        const list = weights[i] as number[];
        if (k >= 5 || list[k] !== undefined) return;
        const e = o.channel.snapshot().endpoints.find((x) => x.address === cold.address);
        // Until it is connected it is no candidate, and its weight is not ramped yet.
        if (e?.candidate) list[k] = e.effectiveWeight;
      });
    }, 50);
    const window = await Promise.all(opened.map((o) => drive(o.channel, rate, warmupMs))).finally(() =>
      clearInterval(sampler),
    );
    return opened.map((o, i) => {
      const w = window[i] as Awaited<ReturnType<typeof drive>>;
      const fifth = warmupMs / 5;
      const shares = [0, 1, 2, 3, 4].map((k) => {
        const inPart = w.calls.filter((c) => c.at >= k * fifth && c.at < (k + 1) * fifth);
        return (100 * inPart.filter((c) => c.server === cold.address).length) / Math.max(1, inPart.length);
      });
      return {
        label: o.label,
        windowP99: quantileOf(w.record.latencies, 0.99),
        shares,
        weights: (weights[i] ?? []).filter((w) => w !== undefined),
        errors: w.record.errors,
      };
    });
  } finally {
    await Promise.all(opened.map((o) => o.channel.close()));
  }
}

/** One channel's figures in the shedding scenario. */
export interface ShedResult {
  label: string;
  /** Share in percent of all calls sent that went to the shedding backend. */
  share: number;
  /** Share in percent of calls that failed. */
  errorRate: number;
  calls: number;
}

/**
 * Four backends, `backends[0]` answering `shedShare` of its calls with
 * RESOURCE_EXHAUSTED at once; each config's channel runs `rate` calls/s for
 * `ms` after a warm-up.
 */
export async function runShedScenario(
  backends: BackendProcess[],
  configs: Array<{ label: string; options: Partial<ChannelOptions> }>,
  { rate = 100, ms = 8000, shedShare = 0.5 } = {},
): Promise<ShedResult[]> {
  const target = `static:///${backends.map((b) => b.address).join(",")}`;
  const shedding = backends[0] as BackendProcess;
  const opened = configs.map((c) => ({
    ...c,
    channel: createChannel({ target, logger: silentLogger, ...c.options }),
  }));
  try {
    await Promise.all(opened.map((o) => allReady(o.channel, backends.length)));
    await Promise.all(opened.map((o) => drive(o.channel, rate, 1500)));
    await shedding.setShed(shedShare);
    const sentBefore = opened.map((o) => sentCalls(o.channel));
    const runs = await Promise.all(opened.map((o) => drive(o.channel, rate, ms)));
    await shedding.setShed(0);
    return opened.map((o, i) => {
      const before = sentBefore[i] as Map<string, number>;
      const after = sentCalls(o.channel);
      let total = 0;
      for (const [address, n] of after) total += n - (before.get(address) ?? 0);
      const toShedding = (after.get(shedding.address) ?? 0) - (before.get(shedding.address) ?? 0);
      const record = (runs[i] as Awaited<ReturnType<typeof drive>>).record;
      const calls = record.latencies.length + record.errors;
      return {
        label: o.label,
        share: (100 * toShedding) / Math.max(1, total),
        errorRate: (100 * record.errors) / Math.max(1, calls),
        calls,
      };
    });
  } finally {
    await Promise.all(opened.map((o) => o.channel.close()));
  }
}

function sentCalls(channel: Channel): Map<string, number> {
  return new Map(channel.snapshot().endpoints.map((e) => [e.address, e.calls]));
}
