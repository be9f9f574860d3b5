/**
 * Scale-up and rolling replacement behind a DNS name: meshlite's dns: resolver
 * against @grpc/grpc-js round_robin, in the same run, against the same dnsmasq
 * (TTL 5 s) and the same echo backends, both clients loaded at once.
 *
 * 1. Scale-up: a third backend is added to the name. How long until it serves
 *    10% of each client's calls? (grpc-js re-resolves only when a connection
 *    breaks, so it may never see it.)
 * 2. Rolling replacement: each backend in turn is replaced by a new one (new
 *    address in DNS, old address removed, the old server stops gracefully
 *    a second later). How many calls fail?
 *
 * Usage: pnpm bench:dns [--runs N]   (default 5 runs; medians are printed)
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { EchoRequestSchema, EchoResponseSchema, EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type Dnsmasq, startDnsmasq } from "../test/support/dnsmasq.js";
import type { EchoBackend } from "../test/support/echo-backend.js";
import { type Load, startLoad } from "../test/support/load.js";
import { startSamePortBackends } from "../test/support/same-port-backends.js";
import { timeToShare } from "../test/support/time-to-share.js";
import { parseArgs } from "./support/args.js";
import { median } from "./support/interleave.js";

// grpc-js reads this when it loads: its c-ares based resolver is the one that
// honours a DNS server in the target (dns://127.0.0.1:PORT/...).
process.env.GRPC_NODE_USE_ALTERNATIVE_RESOLVER = "true";
const grpc = await import("@grpc/grpc-js");

const ttlSeconds = 5;
const shareWanted = 0.1;
const scaleUpTimeoutMs = 60_000;
const concurrency = 4;
const backendDelayMs = 5;
const { runs } = parseArgs({ runs: 5 }, "pnpm bench:dns [--runs N]");

interface BenchClient {
  readonly name: string;
  call(): Promise<{ server: string }>;
  close(): Promise<void>;
}

function meshliteClient(target: string): BenchClient {
  // Slow start off: this measures following the records; slow start (on by default) ramps a
  // new pod's share over 30 s on purpose.
  const channel = createChannel({ target, balancer: "p2c", logger: silentLogger, slowStart: false });
  const client = createClient(EchoService, channel);
  return {
    name: "meshlite",
    call: () => client.echo({ message: "x" }, { timeoutMs: 5000 }),
    close: () => channel.close(),
  };
}

function grpcJsClient(target: string): BenchClient {
  const client = new grpc.Client(target, grpc.credentials.createInsecure(), {
    "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
    "grpc.service_config_disable_resolution": 1,
  });
  const request = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "x" }));
  return {
    name: "grpc-js round_robin",
    call: () =>
      new Promise<{ server: string }>((resolve, reject) => {
        client.makeUnaryRequest(
          "/meshlite.echo.v1.EchoService/Echo",
          (bytes: Uint8Array) => Buffer.from(bytes),
          (bytes: Buffer) => fromBinary(EchoResponseSchema, bytes),
          request,
          { deadline: Date.now() + 5000 },
          (error, response) => (error || !response ? reject(error) : resolve(response)),
        );
      }),
    close: async () => client.close(),
  };
}

/** Calls served by one load, all servers together. */
const callsOf = (load: Load) => load.result.ok;

/** Milliseconds until `address` serves `share` of the load's calls over a 1 s window, or undefined. */
function timeToShareOf(load: Load, address: string): Promise<number | undefined> {
  const counts = { mine: () => load.result.byServer.get(address) ?? 0, total: () => callsOf(load) };
  return timeToShare(address, counts, shareWanted, { timeoutMs: scaleUpTimeoutMs }).catch(() => undefined);
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface RunResult {
  scaleUpMs: Record<string, number | undefined>;
  rollingFailed: Record<string, number>;
  rollingCalls: Record<string, number>;
  /** Share of calls on the new backends in the last 2 s of the rolling phase. */
  onNewSet: Record<string, number>;
  errors: Record<string, Map<string, number>>;
}

async function run(index: number): Promise<RunResult> {
  const dns: Dnsmasq = await startDnsmasq({ ttl: ttlSeconds });
  const group = await startSamePortBackends(["127.0.54.61", "127.0.54.62"], { delayMs: backendDelayMs });
  const setRecords = (list: readonly EchoBackend[]) => dns.setHosts({ "orders.test": list.map((b) => b.host) });
  let live = [...group.all];
  await setRecords(live);
  const target = `dns://${dns.address}/orders.test:${group.port}`;
  const clients = [meshliteClient(target), grpcJsClient(target)];
  const loads = clients.map((client) => startLoad(() => client.call(), { concurrency, intervalMs: 2 }));
  try {
    // Warm up, then add the backend at a random point of the TTL cycle, so
    // that runs sample the whole range of "time until the next refresh".
    await sleep(2000 + Math.random() * ttlSeconds * 1000);
    process.stdout.write(`run ${index + 1}/${runs}: scale-up... `);
    const added = await group.start("127.0.54.63");
    live = [...live, added];
    await setRecords(live);
    const scaleUp = await Promise.all(loads.map((load) => timeToShareOf(load, added.address)));

    process.stdout.write("rolling replacement... ");
    const failedBefore = loads.map((l) => l.result.failed);
    const callsBefore = loads.map((l) => callsOf(l));
    for (const [i, old] of [...live].entries()) {
      const fresh = await group.start(`127.0.54.${64 + i}`);
      live = [...live.filter((b) => b !== old), fresh];
      await setRecords(live);
      await sleep(1000);
      await old.close();
      await sleep(2000);
    }
    const newBefore = loads.map((l) => live.reduce((sum, b) => sum + (l.result.byServer.get(b.address) ?? 0), 0));
    const totalBefore = loads.map((l) => callsOf(l));
    await sleep(2000);
    console.log("done");
    const result: RunResult = { scaleUpMs: {}, rollingFailed: {}, rollingCalls: {}, onNewSet: {}, errors: {} };
    clients.forEach((client, i) => {
      const load = loads[i] as Load;
      result.scaleUpMs[client.name] = scaleUp[i];
      result.rollingFailed[client.name] = load.result.failed - (failedBefore[i] ?? 0);
      result.rollingCalls[client.name] = callsOf(load) - (callsBefore[i] ?? 0);
      const onNew = live.reduce((sum, b) => sum + (load.result.byServer.get(b.address) ?? 0), 0) - (newBefore[i] ?? 0);
      result.onNewSet[client.name] = onNew / Math.max(1, callsOf(load) - (totalBefore[i] ?? 0));
      result.errors[client.name] = load.result.errorsByText;
    });
    return result;
  } finally {
    await Promise.all(loads.map((l) => l.stop()));
    await Promise.all(clients.map((c) => c.close()));
    await group.closeAll();
    await dns.close();
  }
}

const seconds = (ms: number | undefined) =>
  ms === undefined ? `not within ${scaleUpTimeoutMs / 1000} s` : `${(ms / 1000).toFixed(1)} s`;

console.log(
  `dns-scale-up: dnsmasq TTL ${ttlSeconds} s, ${concurrency} concurrent unary calls per client, backends delay ${backendDelayMs} ms, ${runs} run(s)`,
);
const results: RunResult[] = [];
for (let i = 0; i < runs; i++) {
  results.push(await run(i));
}

const names = Object.keys(results[0]?.scaleUpMs ?? {});
const rows: [string, ...string[]][] = [
  ["", ...names],
  ...results.map(
    (r, i) =>
      [`run ${i + 1}: new backend at 10% of calls`, ...names.map((n) => seconds(r.scaleUpMs[n]))] as [
        string,
        ...string[],
      ],
  ),
  [
    "median: new backend at 10% of calls",
    ...names.map((n) => {
      const times = results.map((r) => r.scaleUpMs[n]);
      // A run that never got there counts as the timeout.
      const med = median(times.map((t) => t ?? Number.POSITIVE_INFINITY));
      return Number.isFinite(med) ? seconds(med) : seconds(undefined);
    }),
  ],
  [
    "rolling replacement: failed / calls (median)",
    ...names.map(
      (n) =>
        `${median(results.map((r) => r.rollingFailed[n] ?? 0))} / ${median(results.map((r) => r.rollingCalls[n] ?? 0))}`,
    ),
  ],
  [
    "calls on the new set afterwards (median)",
    ...names.map((n) => `${(median(results.map((r) => r.onNewSet[n] ?? 0)) * 100).toFixed(0)}%`),
  ],
];
const widths = (rows[0] ?? []).map((_, col) => Math.max(...rows.map((row) => (row[col] ?? "").length)));
console.log();
for (const row of rows) {
  console.log(row.map((cell, col) => cell.padEnd(widths[col] ?? 0)).join("  |  "));
}
const meshliteMs = median(results.map((r) => r.scaleUpMs.meshlite ?? Number.POSITIVE_INFINITY));
const peerMs = median(results.map((r) => r.scaleUpMs["grpc-js round_robin"] ?? Number.POSITIVE_INFINITY));
console.log();
console.log(
  Number.isFinite(peerMs)
    ? `grpc-js / meshlite time to 10%: ${(peerMs / meshliteMs).toFixed(1)}x`
    : `grpc-js / meshlite time to 10%: > ${(scaleUpTimeoutMs / meshliteMs).toFixed(1)}x (grpc-js not within ${scaleUpTimeoutMs / 1000} s)`,
);
for (const [i, r] of results.entries()) {
  for (const [name, errors] of Object.entries(r.errors)) {
    for (const [text, count] of errors) {
      console.log(`run ${i + 1} ${name}: ${count} x ${text}`);
    }
  }
}
