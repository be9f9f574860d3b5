// Where meshlite-proxy's CPU goes per forwarded call: runs the proxy (from
// dist: `pnpm build` first) under --cpu-prof in front of four backends,
// drives unary Echo calls at a fixed concurrency, then prints the profile's
// self time by function and by area, in µs per call. Not part of `pnpm bench`:
// a tool for finding the next cost to cut (issue 19 asks for the profile).
// Run: pnpm exec tsx bench/proxy-profile.ts   (ENGINE=frames SECONDS=8 CONCURRENCY=64 TOP=30 STREAM=0;
// NODE_ARGS="--max-semi-space-size=32" passes flags to the proxy's node)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBackendProcess } from "../test/support/backend-process.js";
import { startProxyProcess } from "../test/support/proxy-process.js";

const engine = process.env.ENGINE ?? "frames";
const seconds = Number(process.env.SECONDS ?? 8);
const concurrency = Number(process.env.CONCURRENCY ?? 64);
const top = Number(process.env.TOP ?? 30);

// STREAM=N: server streams of N messages per call instead of unary calls.
const streamMessages = Number(process.env.STREAM ?? 0);

// EchoRequest { message: "hello", count: N } in a gRPC envelope; the proxy never decodes it.
const payload = Buffer.from([0x0a, 5, ...Buffer.from("hello"), ...(streamMessages > 0 ? [0x18, streamMessages] : [])]);
const body = Buffer.concat([Buffer.from([0, 0, 0, 0, payload.length]), payload]);
const headers = {
  ":method": "POST",
  ":path": `/meshlite.echo.v1.EchoService/${streamMessages > 0 ? "ServerStream" : "Echo"}`,
  "content-type": "application/grpc",
  te: "trailers",
};

function call(session: http2.ClientHttp2Session): Promise<boolean> {
  return new Promise((resolve) => {
    let ok = false;
    const req = session.request(headers);
    req.on("trailers", (t) => {
      ok = t["grpc-status"] === "0";
    });
    req.on("error", () => {});
    req.on("close", () => resolve(ok));
    req.resume();
    req.end(body);
  });
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Which part of the process a function belongs to, by its script. */
function areaOf(frame: ProfileNode["callFrame"]): string {
  const { url, functionName } = frame;
  if (url === "") return functionName.startsWith("(") ? functionName : "(native)";
  if (url.startsWith("node:internal/http2")) return "node:http2";
  if (url.startsWith("node:internal/streams") || url === "node:stream") return "node:streams";
  if (url.startsWith("node:internal/timers") || url.startsWith("node:timers")) return "node:timers";
  if (url.startsWith("node:internal/process/task_queues")) return "node:nextTick/microtasks";
  if (url.startsWith("node:internal/stream_base") || url.startsWith("node:net")) return "node:net";
  if (url.startsWith("node:")) return "node:other";
  return "meshlite (dist)";
}

async function main() {
  const profileDir = mkdtempSync(join(tmpdir(), "meshlite-proxy-profile-"));
  const backends = await Promise.all([71, 72, 73, 74].map((n) => startBackendProcess(`127.0.0.${n}`)));
  const target = `static:///${backends.map((b) => b.address).join(",")}`;
  const proxy = await startProxyProcess(
    ["--listen", "127.0.0.79:0", "--target", target, "--balancer", "round-robin", "--workers", "1", "--engine", engine],
    {
      fromSource: false,
      nodeArgs: [
        "--cpu-prof",
        `--cpu-prof-dir=${profileDir}`,
        ...(process.env.NODE_ARGS ?? "").split(" ").filter(Boolean),
      ],
    },
  );
  let calls = 0;
  let failed = 0;
  let warmupCalls = 0;
  try {
    const session = http2.connect(`http://${proxy.address}`);
    session.on("error", () => {});
    // Warm up, then measure.
    for (const ms of [1000, seconds * 1000]) {
      const end = performance.now() + ms;
      warmupCalls += calls;
      calls = 0;
      failed = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < end) {
            if (await call(session)) calls++;
            else failed++;
          }
        }),
      );
    }
    session.close();
  } finally {
    proxy.kill("SIGTERM");
    await proxy.exited;
    await Promise.all(backends.map((b) => b.stop()));
  }
  const file = readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no profile written in ${profileDir}`);
  const profile = JSON.parse(readFileSync(join(profileDir, file), "utf8")) as Profile;
  rmSync(profileDir, { recursive: true, force: true });
  summarize(profile, calls, warmupCalls, failed);
}

function summarize(profile: Profile, calls: number, warmupCalls: number, failed: number) {
  // Self time per node from the samples and their time deltas (µs).
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let busyUs = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const f = node.callFrame;
    if (f.functionName === "(idle)") continue;
    busyUs += us;
    const where = f.url === "" ? "" : ` ${f.url.replace(/^.*\//, "")}:${f.lineNumber + 1}`;
    const name = `${f.functionName || "(anonymous)"}${where}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const area = areaOf(f);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  }
  // The profile covers the proxy's start too (module loading: small against a long run).
  const all = calls + warmupCalls;
  console.log(
    `engine ${engine}: ${calls} calls in ${seconds} s (${failed} failed) after ${warmupCalls} warm-up calls; proxy busy ${(busyUs / 1000).toFixed(0)} ms, ${(busyUs / all).toFixed(1)} µs per call (start included)`,
  );
  const cell = (us: number) => `${((us / busyUs) * 100).toFixed(1)}% | ${(us / all).toFixed(2)}`;
  console.log("\n| area | share of busy CPU | µs per call |\n|---|---:|---:|");
  for (const [area, us] of [...byArea].sort((a, b) => b[1] - a[1])) console.log(`| ${area} | ${cell(us)} |`);
  console.log(`\n| function (self time) | share | µs per call |\n|---|---:|---:|`);
  for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`| ${name} | ${cell(us)} |`);
  }
}

await main();
