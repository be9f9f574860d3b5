// What an attacking client costs the others (issue 17): a well-behaved client
// calls through meshlite-proxy at a steady open-loop rate while, in another
// process, a hostile client repeats one attack (reconnecting whenever the
// proxy cuts it off). Slices with and without each attack are interleaved;
// per attack: the legit client's failures and p99 against the attack-free
// slices of the same round, and how many connections the attacker opened.
// The proxy, the backends, the attacker and this client each run in their own
// process on the same two cores, so what the proxy spends on an attack shows
// in the p99. The attacker runs at the lowest CPU priority (nice 19) by
// default: deployed, it has a machine of its own, and the CPU its own loop
// burns is not what the proxy costs the others. It still floods as fast as
// the cores left over let it; what it wrote per slice is printed.
// `--attacker-nice 0` runs it at the proxy's priority.
//
// Run: pnpm bench:hostile [--rounds 3] [--slice-ms 4000] [--rate 200] [--attacker-nice 19]
// (ATTACKS=ping,continuation runs only those; the proxy runs from dist: pnpm build first.)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { startBackendGroup } from "../test/support/backend-process.js";
import { forkReady } from "../test/support/fork-ready.js";
import { startProxyProcess } from "../test/support/proxy-process.js";
import { parseArgs } from "./support/args.js";
import { median, quantile } from "./support/stats.js";

const { rounds, sliceMs, rate, attackerNice } = parseArgs(
  { rounds: 3, sliceMs: 4000, rate: 200, attackerNice: 19 },
  "tsx bench/hostile-clients.ts [--rounds 3] [--slice-ms 4000] [--rate 200] [--attacker-nice 19]",
);
// The attacks bench/support/attacker-main.ts knows.
const allAttacks = ["rapid-reset", "continuation", "ping", "settings", "slowloris", "no-end", "slow-reader"] as const;
type AttackKind = (typeof allAttacks)[number];
const attackKinds = process.env.ATTACKS
  ? allAttacks.filter((kind) => process.env.ATTACKS?.split(",").includes(kind))
  : allAttacks;
// Each attack slice's attacker connects from an address of its own, as a new
// host would (the worst case: an attacker with addresses to spare). The proxy
// refuses a cut-off client's address for a while (abusePenaltyMs), so a
// shared one would carry one slice's penalty into the next; the legit client
// connects from 127.0.0.1.
const attackerAddress = (round: number, kind: AttackKind) =>
  `127.0.61.${20 + round * allAttacks.length + allAttacks.indexOf(kind)}`;
const attacker = fileURLToPath(new URL("./support/attacker-main.ts", import.meta.url));

async function main() {
  const backends = await startBackendGroup(["127.0.61.1", "127.0.61.2"]);
  const dir = mkdtempSync(join(tmpdir(), "meshlite-hostile-"));
  const config = join(dir, "proxy.json");
  // Short idle limits, so the no-end and slow-reader attacks cycle within a slice
  // (long enough that a legit call on a busy machine is not taken for idle).
  writeFileSync(
    config,
    JSON.stringify({
      listen: "127.0.61.10:0",
      streamIdleTimeoutMs: 2000,
      handshakeTimeoutMs: 1000,
      routes: [{ target: `static:///${backends.map((b) => b.address).join(",")}` }],
    }),
  );
  const proxy = await startProxyProcess(["--config", config, "--workers", "1"], { fromSource: false });
  const [host, port] = proxy.address.split(":") as [string, string];
  const client = createClient(EchoService, createGrpcTransport({ baseUrl: `http://${proxy.address}` }));

  /** Open-loop calls at `rate` per second for `ms`: latencies of the ones that succeeded, failures. */
  async function legitSlice(ms: number): Promise<{ latencies: number[]; failed: number }> {
    const latencies: number[] = [];
    let failed = 0;
    const calls: Promise<void>[] = [];
    const start = performance.now();
    for (let i = 0; performance.now() - start < ms; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const t = performance.now();
      calls.push(
        client.echo({ message: "legit" }).then(
          () => void latencies.push(performance.now() - t),
          (e) => {
            if (failed++ === 0) console.error(`first failed call: ${String(e)}`);
          },
        ),
      );
    }
    await Promise.all(calls);
    return { latencies, failed };
  }

  await legitSlice(1000); // warm-up
  const results = new Map<
    AttackKind | "none",
    { p99: number[]; failed: number; calls: number; connections: number[]; steps: number[] }
  >();
  for (const kind of ["none", ...attackKinds] as const)
    results.set(kind, { p99: [], failed: 0, calls: 0, connections: [], steps: [] });
  for (let round = 0; round < rounds; round++) {
    const none = await legitSlice(sliceMs);
    const baseline = quantile(none.latencies, 0.99);
    const r0 = results.get("none")!;
    r0.p99.push(baseline);
    r0.failed += none.failed;
    r0.calls += none.latencies.length + none.failed;
    for (const kind of attackKinds) {
      const { child, exited } = await forkReady<{ type: string }>(
        attacker,
        [host, port, kind, String(attackerNice), attackerAddress(round, kind)],
        {
          name: `attacker (${kind})`,
        },
      );
      const slice = await legitSlice(sliceMs);
      const { connections, steps } = await new Promise<{ connections: number; steps: number }>((resolve) => {
        child.once("message", (m: { connections: number; steps: number }) => resolve(m));
        child.send({ type: "stats" });
      });
      child.kill("SIGKILL");
      await exited;
      const r = results.get(kind)!;
      r.p99.push(quantile(slice.latencies, 0.99) / baseline);
      r.failed += slice.failed;
      r.calls += slice.latencies.length + slice.failed;
      r.connections.push(connections);
      r.steps.push(steps);
    }
  }
  console.log(
    `\nA legit client at ${rate} calls/s through meshlite-proxy while another process (nice ${attackerNice}) attacks it; ${rounds} rounds of ${sliceMs} ms slices`,
  );
  console.log(
    `${"attack".padEnd(14)}${"legit calls".padStart(13)}${"failed".padStart(8)}${"p99 vs none".padStart(13)}${"attacker conns/slice".padStart(22)}${"frames/slice".padStart(14)}`,
  );
  for (const [kind, r] of results) {
    const p99 = kind === "none" ? `${median(r.p99).toFixed(1)} ms` : `${median(r.p99).toFixed(2)}x`;
    const conns = kind === "none" ? "-" : String(Math.round(median(r.connections)));
    const steps = kind === "none" || median(r.steps) === 0 ? "-" : String(Math.round(median(r.steps)));
    console.log(
      `${kind.padEnd(14)}${String(r.calls).padStart(13)}${String(r.failed).padStart(8)}${p99.padStart(13)}${conns.padStart(22)}${steps.padStart(14)}`,
    );
  }
  proxy.kill("SIGTERM");
  await proxy.exited;
  await Promise.all(backends.map((b) => b.stop()));
  rmSync(dir, { recursive: true, force: true });
}

await main();
