// The default balancer (p2c) against real backend processes on loopback:
// equal backends get equal shares at every load, new ones take theirs at once,
// and a slow or failing one is still left within a few calls. Shares are
// counted over seconds of open-loop calls, so the bounds (± 5 points) hold on
// a busy machine; the exact properties are unit tests of the balancer
// (packages/balancers/test) and of the estimate (packages/core/test).
//
// The backends of a test run in one child process (startBackendGroup), so
// they are equal by construction on a busy machine too: separate processes
// are scheduled apart, and one starved of CPU for seconds is then truly
// slower, which p2c is right to notice. What makes real equal pods look
// unequal is noise of their own: a GC pause, a late timer. The calls bring
// it (noisyRequest): one in 50 takes 15 ms longer, on whichever backend
// serves it.
import { Code, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { type Balancer, type Channel, createChannel, createP2cBalancer } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { createRecorder, type Recorder, runOpenLoop } from "../examples/demo/open-loop.js";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type BackendProcess, startBackendGroup } from "./support/backend-process.js";
import { createManualResolver } from "./support/manual-resolver.js";
import { timeToShare } from "./support/time-to-share.js";
import { waitFor } from "./support/wait-for.js";

let backends: BackendProcess[] = [];
let channels: Channel[] = [];
afterEach(async () => {
  await Promise.all(channels.map((c) => c.close()));
  await Promise.all(backends.map((b) => b.kill()));
  backends = [];
  channels = [];
});

const start = (hosts: number[]) => startBackendGroup(hosts.map((n) => `127.0.11.${n}`));
const staticTarget = (list: BackendProcess[]) => `static:///${list.map((b) => b.address).join(",")}`;

function open(options: Parameters<typeof createChannel>[0]): Channel {
  const channel = createChannel({ logger: silentLogger, ...options });
  channels.push(channel);
  return channel;
}

async function allReady(channel: Channel) {
  await waitFor("every endpoint ready", () => channel.snapshot().endpoints.every((e) => e.state === "ready"));
}

/** An echo request; one in 50 is held 15 ms by the backend, as a GC pause or a late timer would. */
const noisyRequest = () => ({ message: "x", delayMs: Math.random() < 0.02 ? 15 : 0 });

/** Open-loop calls at `rate` per second for `durationMs` on `channel`, counted into `record`. */
function drive(
  channel: Channel,
  rate: number,
  durationMs: number,
  record: Recorder = createRecorder(),
  signal?: AbortSignal,
) {
  const client = createClient(EchoService, channel);
  return runOpenLoop({ rate, durationMs, call: () => client.echo(noisyRequest()), record, signal }).then(() => record);
}

/** Open-loop calls like drive(), each noted with when it started and which backend answered. */
async function driveNoted(channel: Channel, rate: number, durationMs: number) {
  const calls: Array<{ at: number; server: string }> = [];
  const client = createClient(EchoService, channel);
  const record = createRecorder();
  await runOpenLoop({
    rate,
    durationMs,
    record,
    call: async () => {
      const at = performance.now();
      const response = await client.echo(noisyRequest());
      calls.push({ at, server: response.server });
      return response;
    },
  });
  return { calls, record };
}

/** The share in percent of `address` among the calls that started in [from, to). */
function shareIn(calls: Array<{ at: number; server: string }>, address: string, from: number, to: number) {
  const window = calls.filter((c) => c.at >= from && c.at < to);
  return {
    share: (100 * window.filter((c) => c.server === address).length) / Math.max(1, window.length),
    calls: window.length,
  };
}

/** Shares in percent, in the backends' order. */
function shares(counts: ReadonlyMap<string, number>, list: BackendProcess[]): number[] {
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  return list.map((b) => (100 * (counts.get(b.address) ?? 0)) / Math.max(1, total));
}

const row = (label: string, values: number[]) =>
  `${label.padEnd(30)}${values.map((v) => `${v.toFixed(1)}%`.padStart(8)).join("")}`;

describe("p2c among equal backends", () => {
  it("gives four equal backends 25 ± 5% each at 50, 100 and 400 calls/s, and over eight channels at 25 calls/s each", async () => {
    backends = await start([1, 2, 3, 4]);
    const target = staticTarget(backends);
    // Two phases of 8 s: 50, 100 and 8 x 25 calls/s at the same time (350 calls/s), then 400 calls/s alone.
    const loads = [
      { label: "1 channel, 50 calls/s", rate: 50, channels: 1, phase: 0 },
      { label: "1 channel, 100 calls/s", rate: 100, channels: 1, phase: 0 },
      { label: "8 channels, 25 calls/s each", rate: 25, channels: 8, phase: 0 },
      { label: "1 channel, 400 calls/s", rate: 400, channels: 1, phase: 1 },
    ].map((load) => ({ ...load, list: Array.from({ length: load.channels }, () => open({ target })) }));
    await Promise.all(loads.flatMap((l) => l.list.map((c) => allReady(c))));
    const records = loads.map(() => createRecorder());
    for (const phase of [0, 1]) {
      const now = loads.filter((l) => l.phase === phase);
      // Warm-up: connections, JIT, estimates.
      await Promise.all(now.flatMap((l) => l.list.map((c) => drive(c, l.rate, 1000))));
      await Promise.all(now.flatMap((l) => l.list.map((c) => drive(c, l.rate, 8000, records[loads.indexOf(l)]))));
    }
    const table = loads.map((l, i) => row(l.label, shares(records[i]?.byServer ?? new Map(), backends)));
    console.log(`shares over 8 s, four equal backends\n${row("", []).trimEnd()}${table.map((r) => `\n${r}`).join("")}`);
    for (const [i, record] of records.entries()) {
      expect(record.errors, loads[i]?.label).toBe(0);
      for (const share of shares(record.byServer, backends)) {
        expect(share, `${loads[i]?.label}: ${table[i]}`).toBeGreaterThanOrEqual(20);
        expect(share, `${loads[i]?.label}: ${table[i]}`).toBeLessThanOrEqual(30);
      }
    }
  });

  it("gives two equal backends added under load their fair share within 5 s of becoming ready (slow start off)", async () => {
    backends = await start([11, 12, 13, 14, 15, 16]);
    const endpoints = backends.map((b) => ({ host: b.host, port: b.port }));
    const resolver = createManualResolver(endpoints.slice(0, 4));
    const readyAt = new Map<string, number>();
    // Slow start (on by default) ramps a new endpoint's share over 30 s on
    // purpose (test/slow-start.test.ts); this is about p2c without a ramp.
    const channel = open({
      target: "static:///svc.test:80",
      resolver,
      slowStart: false,
      onEvent: (e) => {
        if (e.type === "endpoint-state" && e.state === "ready" && !readyAt.has(e.address)) {
          readyAt.set(e.address, performance.now());
        }
      },
    });
    await allReady(channel);
    const load = driveNoted(channel, 100, 9000);
    await new Promise((r) => setTimeout(r, 2000));
    resolver.set(endpoints);
    const { calls, record } = await load;
    expect(record.errors).toBe(0);
    const lines: string[] = [];
    for (const b of backends.slice(4)) {
      const ready = readyAt.get(b.address);
      expect(ready, `${b.address} became ready`).toBeDefined();
      const at = ready ?? 0;
      // Its share from 1 s to 5 s after it became ready, and second by second.
      const { share, calls: n } = shareIn(calls, b.address, at + 1000, at + 5000);
      const perSecond = [0, 1, 2, 3, 4].map((s) => shareIn(calls, b.address, at + s * 1000, at + (s + 1) * 1000).share);
      lines.push(
        `${b.address}: ${share.toFixed(1)}% over 1-5 s after ready; by second: ${perSecond.map((s) => `${s.toFixed(0)}%`).join(" ")}`,
      );
      expect(n).toBeGreaterThan(300);
      expect(share, lines.join("\n")).toBeGreaterThanOrEqual(100 / 6 - 5);
      expect(share, lines.join("\n")).toBeLessThanOrEqual(100 / 6 + 5);
    }
    console.log(`two backends added to four (fair: 16.7%)\n${lines.join("\n")}`);
  });
});

describe("p2c still leaves a slow or failing backend", () => {
  // bench:slow measures +30 ms at 250 calls/s, with p99 latency. Here +100 ms at 100 calls/s:
  // on a machine busy with other test files the healthy calls' own latency reaches tens of
  // ms, and the test is about p2c leaving a clearly slower backend, not about that noise.
  it("sends a backend 100 ms slower under 5% of calls, and leaves one that starts failing within a few calls", async () => {
    backends = await start([21, 22, 23, 24, 25]);
    const [slow, failing] = backends as [BackendProcess, BackendProcess];
    await slow.setDelay(100);
    // Passive ejection off: this is about the balancer alone.
    const channel = open({ target: staticTarget(backends), outlierDetection: false });
    await allReady(channel);
    await drive(channel, 100, 1000);
    const from = performance.now();
    const { calls } = await driveNoted(channel, 100, 5000);
    const overall = shareIn(calls, slow.address, from, from + 5000);
    const perSecond = [0, 1, 2, 3, 4].map(
      (s) => shareIn(calls, slow.address, from + s * 1000, from + (s + 1) * 1000).share,
    );
    console.log(
      `calls to the backend +100 ms of five: ${overall.share.toFixed(2)}% of ${overall.calls}; by second: ${perSecond.map((s) => `${s.toFixed(1)}%`).join(" ")}`,
    );
    // The median second: a second or two in which this busy machine stalls every call
    // (when no latency tells the backends apart) do not decide.
    expect([...perSecond].sort((a, b) => a - b)[2]).toBeLessThan(5);

    // One thing at a time: the slow backend is back to normal, and settles, before another starts failing.
    await slow.setDelay(0);
    await drive(channel, 100, 1000);
    await failing.setFailCode(Code.Unavailable);
    const failedAt: number[] = [];
    const failFrom = performance.now();
    const client = createClient(EchoService, channel);
    await runOpenLoop({
      rate: 100,
      durationMs: 3000,
      record: createRecorder(),
      call: () =>
        client.echo({ message: "x" }).catch((e: unknown) => {
          failedAt.push(performance.now() - failFrom);
          throw e;
        }),
    });
    const inFirstSecond = failedAt.filter((t) => t < 1000).length;
    console.log(
      `calls to a backend that started failing (fair share 20 a second): ${inFirstSecond} in the first second, ${failedAt.length} over 3 s`,
    );
    // Left within a few calls; later its penalty decays and it is probed now and then.
    expect(inFirstSecond).toBeLessThanOrEqual(3);
    expect(failedAt.length).toBeLessThanOrEqual(8);
  });

  it("bounds the penalty of twenty failures in a row: the endpoint is back in its share within 10 s of recovering", async () => {
    backends = await start([31, 32, 33, 34]);
    const bad = backends[0] as BackendProcess;
    // p2c, except that while `forced` every call goes to the bad endpoint: twenty failures in a row.
    const p2c = createP2cBalancer();
    let forced = false;
    const balancer: Balancer = {
      name: "p2c (forced for the test)",
      pick: (ready, call) => (forced ? ready.find((c) => c.key === bad.address) : p2c.pick(ready, call)),
    };
    const channel = open({ target: staticTarget(backends), balancer, outlierDetection: false });
    await allReady(channel);
    const client = createClient(EchoService, channel);
    await drive(channel, 100, 1000);
    const estimate = () => channel.snapshot().endpoints.find((e) => e.address === bad.address)?.latencyMs ?? 0;
    const before = estimate();
    await bad.setFailCode(Code.Unavailable);
    forced = true;
    let highest = 0;
    for (let i = 0; i < 20; i++) {
      await expect(client.echo({ message: "x" })).rejects.toThrow();
      highest = Math.max(highest, estimate());
    }
    forced = false;
    await bad.setFailCode(0);
    console.log(
      `estimate of the failing endpoint: ${before.toFixed(2)} ms before, at most ${highest.toFixed(2)} ms after 20 failures`,
    );
    // At most 100 times the healthy estimate (which decayed a little by `before`); doubling
    // without a ceiling, twenty failures would make it a million times that.
    expect(highest).toBeLessThan(150 * before);

    const record = createRecorder();
    const recovered = performance.now();
    const stop = new AbortController();
    const load = drive(channel, 100, 12_000, record, stop.signal);
    try {
      const took = await timeToShare(
        "the recovered endpoint",
        { mine: () => record.byServer.get(bad.address) ?? 0, total: () => record.total() },
        0.2,
        { since: recovered, timeoutMs: 10_000 },
      );
      console.log(`back to 20%+ of calls ${(took / 1000).toFixed(1)} s after recovering`);
    } finally {
      stop.abort();
      await load;
    }
  });
});
