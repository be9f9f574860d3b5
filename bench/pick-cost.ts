/**
 * How much does a balancer's pick cost? `balancer.pick` on synthetic ready
 * lists of 10, 100 and 1000 endpoints whose load objects work like the
 * channel's (getters over counters, a peak-EWMA latency estimate and a call
 * rate, both decayed on every read). Loads change between picks: the picked
 * endpoint gets a call (and its call rate counts it), another one finishes one. Balancers take turns in every run;
 * the figure is the median of the runs.
 *
 * Every endpoint carries a server load report (ORCA), for weighted round
 * robin; its weights are recomputed once a second, inside the runs.
 *
 * ring-hash and Maglev pick for calls whose x-hash-key header takes turns
 * over 1024 keys; their tables are built on the first pick (the warm-up),
 * as the channel builds them when the candidates change.
 *
 * The last row is the pool's whole per-call path over ready endpoints:
 * tryPick (the candidates the endpoint policies left, cached until a change,
 * then p2c) and the call's begin and end on the endpoint.
 *
 *   pnpm bench:pick [--runs 7] [--picks 200000]
 */
import type { Balancer, PickCall, PickCandidate } from "@meshlite/core";
import { createCallRate, createPeakEwma, emptyOrcaLoadReport, parseTarget, silentLogger } from "@meshlite/core";
import { createEndpointPool, resolveOutlierDetection, type Subchannel } from "@meshlite/pool";
import type { EndpointConnection } from "@meshlite/transport";
import {
  createLeastRequestBalancer,
  createMaglevBalancer,
  createP2cBalancer,
  createRingHashBalancer,
  createRoundRobinBalancer,
  createWeightedRoundRobinBalancer,
} from "../src/index.js";
import { parseArgs } from "./support/args.js";
import { median } from "./support/stats.js";

interface Candidate extends PickCandidate {
  inFlight: number;
  /** A call starts on it at `at`, as the channel's begin() records it. */
  started(at: number): void;
}

/** A candidate shaped like the channel's subchannels. */
function createCandidate(index: number): Candidate {
  const ewma = createPeakEwma();
  ewma.observe(1 + Math.random() * 4);
  const rate = createCallRate();
  // A server load report, as ORCA servers send (weighted round robin balances by it).
  const report = { ...emptyOrcaLoadReport(), rpsFractional: 100, applicationUtilization: 0.2 + Math.random() * 0.6 };
  const serverLoad = { report, receivedAt: performance.now() - 20_000 };
  const candidate: Candidate = {
    key: `10.0.${index >> 8}.${index & 255}:50051`,
    hashKey: `10.0.${index >> 8}.${index & 255}:50051`,
    endpoint: { host: `10.0.${index >> 8}.${index & 255}`, port: 50051 },
    weight: 1,
    inFlight: Math.floor(Math.random() * 4),
    load: {
      get inFlight() {
        return candidate.inFlight;
      },
      get pending() {
        return candidate.inFlight;
      },
      latencyMs: (now) => ewma.estimate(now),
      callRate: (now) => rate.rate(now),
      serverLoad,
    },
    started: (at) => rate.record(at),
  };
  return candidate;
}

/** The call every pick is for: what the channel passes (method and headers, read only on demand). */
const call: PickCall = { method: "meshlite.echo.v1.EchoService/Echo", header: () => undefined };

/** Hash keys the affinity balancers' calls carry, taking turns. */
const hashKeys = Array.from({ length: 1024 }, (_, i) => `user-${i}`);
let nextKey = 0;
/** A call with an `x-hash-key` header, another key each time (the header lookup is part of the figure). */
const hashedCall: PickCall = {
  method: call.method,
  header: (name) => (name === "x-hash-key" ? hashKeys[nextKey++ & 1023] : undefined),
};

/** A balancer that hashes: picks for `hashedCall` (the name says which variant). */
function hashing(name: string, balancer: Balancer): Balancer {
  return { name, pick: (ready) => balancer.pick(ready, hashedCall) };
}

/** The loop without a balancer's work: returns the first candidate. */
const baseline: Balancer = { name: "baseline (ready[0])", pick: (ready) => ready[0] };

function measure(balancer: Balancer, ready: Candidate[], picks: number): number {
  let done = 0;
  let checksum = 0;
  // The channel reads the clock once per call; here once per run, so that the figure is the pick's.
  const startedAt = performance.now();
  const start = process.hrtime.bigint();
  for (let i = 0; i < picks; i++) {
    const picked = balancer.pick(ready, call) as Candidate;
    picked.inFlight++;
    picked.started(startedAt);
    // Some call elsewhere completes, so loads keep moving.
    const finished = ready[done] as Candidate;
    if (finished.inFlight > 0) finished.inFlight--;
    done = done + 1 === ready.length ? 0 : done + 1;
    checksum += picked.inFlight;
  }
  const ns = Number(process.hrtime.bigint() - start) / picks;
  if (checksum < 0) console.log("unreachable");
  return ns;
}

/** A connection that is ready and does nothing else: the pool's pick path without sockets. */
function readyConnection(endpoint: { host: string; port: number }): EndpointConnection {
  return {
    address: `${endpoint.host}:${endpoint.port}`,
    state: () => "ready",
    lostStreams: () => 0,
    connectionCount: () => 1,
    subscribe: () => () => {},
    connect() {},
    disconnect() {},
    close: async () => {},
  };
}

/**
 * The whole per-call path of the pool with every endpoint ready: tryPick
 * (cached candidates after the endpoint policies, then p2c), and the call's
 * begin and end on the endpoint (load accounting, outlier bookkeeping).
 */
function measurePool(size: number, runs: number, picks: number): number {
  const endpoints = Array.from({ length: size }, (_, i) => ({ host: `10.0.${i >> 8}.${i & 255}`, port: 50051 }));
  const pool = createEndpointPool({
    target: parseTarget("static:///10.0.0.0:50051"),
    resolver: { start: (l) => l.onEndpoints(endpoints), refresh() {}, close() {} },
    balancer: createP2cBalancer(),
    createConnection: readyConnection,
    outlierDetection: resolveOutlierDetection({ failureRate: false }, "bench"),
    logger: silentLogger,
  });
  const outcome = { ok: true, failure: false, pending: true, sample: true };
  const once = (n: number) => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const sc = pool.tryPick(undefined, call) as Subchannel;
      sc.end(sc.begin(), outcome);
    }
    return Number(process.hrtime.bigint() - start) / n;
  };
  once(Math.min(picks, 50_000));
  const samples = Array.from({ length: runs }, () => once(picks));
  void pool.destroy();
  return median(samples);
}

export interface PickCostResult {
  endpoints: number;
  /** ns per pick by balancer name. */
  nsPerPick: Record<string, number>;
}

export function runPickCost(options: { runs: number; picks: number } = { runs: 7, picks: 200_000 }): PickCostResult[] {
  const { runs, picks } = options;
  const factories: Array<() => Balancer> = [
    () => baseline,
    () => createRoundRobinBalancer(),
    () => createLeastRequestBalancer(),
    () => createP2cBalancer(),
    () => createWeightedRoundRobinBalancer({ blackoutPeriodMs: 0 }),
    () => hashing("ring-hash", createRingHashBalancer()),
    () => hashing("ring-hash bounded 1.25", createRingHashBalancer({ hashBalanceFactor: 1.25 })),
    () => hashing("maglev", createMaglevBalancer()),
    () => hashing("maglev bounded 1.25", createMaglevBalancer({ hashBalanceFactor: 1.25 })),
  ];
  const results: PickCostResult[] = [];
  console.log(`pick cost: ns per balancer.pick, median of ${runs} runs of ${picks} picks`);
  for (const size of [10, 100, 1000]) {
    const ready = Array.from({ length: size }, (_, i) => createCandidate(i));
    const balancers = factories.map((f) => f());
    // Warm up: let the JIT see every balancer on this list.
    for (const b of balancers) measure(b, ready, Math.min(picks, 50_000));
    const samples = balancers.map(() => [] as number[]);
    for (let run = 0; run < runs; run++) {
      // Rotate the order so that no balancer always runs right after another.
      for (let k = 0; k < balancers.length; k++) {
        const index = (k + run) % balancers.length;
        samples[index]?.push(measure(balancers[index] as Balancer, ready, picks));
      }
    }
    const nsPerPick = Object.fromEntries(balancers.map((b, i) => [b.name, median(samples[i] ?? [])]));
    results.push({ endpoints: size, nsPerPick });
  }
  const names = Object.keys(results[0]?.nsPerPick ?? {});
  const width = Math.max(...names.map((n) => n.length));
  console.log(`  ${"endpoints".padEnd(width)}${results.map((r) => String(r.endpoints).padStart(10)).join("")}`);
  for (const name of names) {
    const cells = results.map((r) => `${(r.nsPerPick[name] ?? Number.NaN).toFixed(0)} ns`.padStart(10));
    console.log(`  ${name.padEnd(width)}${cells.join("")}`);
  }
  const pooled = results.map((r) => measurePool(r.endpoints, runs, picks));
  const label = "pool.tryPick p2c, begin+end";
  console.log(`  ${label.padEnd(width)}${pooled.map((ns) => `${ns.toFixed(0)} ns`.padStart(10)).join("")}`);
  results.forEach((r, i) => {
    r.nsPerPick[label] = pooled[i] as number;
  });
  const rr = "round-robin";
  for (const name of names.filter((n) => n !== rr && !n.startsWith("baseline"))) {
    const ratios = results.map((r) => ((r.nsPerPick[name] ?? 0) / (r.nsPerPick[rr] ?? 1)).toFixed(2));
    console.log(`  ${name} / round-robin: ${ratios.join(", ")} (at ${results.map((r) => r.endpoints).join(", ")})`);
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runPickCost(parseArgs({ runs: 7, picks: 200_000 }, "tsx bench/pick-cost.ts [--runs 7] [--picks 200000]"));
}
