// gRPC throughput, p50/p99 latency and proxy CPU per call at a fixed
// concurrency through meshlite-proxy, through nginx `grpc_pass` (when nginx is
// installed), and straight to the backends, in one run on the same four
// backends, for two workloads, each its own table: unary Echo, and a server
// stream of 100 small messages per call (ServerStream, each message the size of
// an Echo answer; a call is the whole stream, and the stream table also gives
// the proxy's CPU per message). Each target gets short slices, interleaved and
// rotated round by round; every round runs every workload's slices (which
// workload goes first alternates); the figures are medians over rounds, and
// the ratios are against nginx's in the same run. Both proxies run one process
// (nginx: one worker) and round-robin over the four backends; the client holds
// one HTTP/2 connection to a proxy (four, one per backend, for direct; two for
// the proxy with --workers 2, one per worker).
// Run: pnpm bench:proxy   (CONCURRENCY=64 ROUNDS=5 SLICE_MS=2000 WORKLOADS=unary,stream)
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type BackendProcess, startBackendProcess } from "../test/support/backend-process.js";
import { closedPort } from "../test/support/free-port.js";
import { type ProxyProcess, startProxyProcess } from "../test/support/proxy-process.js";
import { waitFor } from "../test/support/wait-for.js";
import { MessageCounter } from "./support/message-counter.js";
import { median } from "./support/stats.js";

const concurrency = Number(process.env.CONCURRENCY ?? 64);
const rounds = Number(process.env.ROUNDS ?? 5);
const sliceMs = Number(process.env.SLICE_MS ?? 2000);
const streamMessages = 100;

/** What every call of one table does. */
interface Workload {
  /** Its name in WORKLOADS. */
  name: string;
  /** The table's title. */
  title: string;
  path: string;
  /** The request body: one gRPC message. */
  body: Buffer;
  /** Response messages a call must bring (with grpc-status 0) to count as done. */
  messages: number;
}

/** A message in a gRPC envelope; the proxies never decode it. */
function envelope(message: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
}

const hello = [0x0a, 5, ...Buffer.from("hello")]; // EchoRequest.message = "hello"
const unary: Workload = {
  name: "unary",
  title: "unary Echo",
  path: "/meshlite.echo.v1.EchoService/Echo",
  body: envelope(Buffer.from(hello)),
  messages: 1,
};
const stream: Workload = {
  name: "stream",
  title: `server stream of ${streamMessages} messages`,
  path: "/meshlite.echo.v1.EchoService/ServerStream",
  // EchoRequest.count = 100: the backend answers with that many EchoResponses, back to back.
  body: envelope(Buffer.from([...hello, 0x18, streamMessages])),
  messages: streamMessages,
};
const workloads = [unary, stream];

/** WORKLOADS: a comma-separated list of workload names, in any order; default all. */
function selectedWorkloads(): Workload[] {
  const names = (process.env.WORKLOADS ?? workloads.map((w) => w.name).join(",")).split(",").map((n) => n.trim());
  const unknown = names.filter((n) => !workloads.some((w) => w.name === n));
  if (unknown.length > 0) {
    console.error(`WORKLOADS: unknown ${JSON.stringify(unknown)}; known: ${workloads.map((w) => w.name).join(",")}`);
    process.exit(2);
  }
  return workloads.filter((w) => names.includes(w.name));
}

/** Where calls go: one or more h2c origins, used round robin. */
interface Target {
  name: string;
  origins: string[];
  /** Processes whose CPU time counts as the target's (the proxy), if any. */
  pids?: () => number[];
}

/** CPU time (user + system) of processes, in ms, from /proc. */
function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

/** A process and its children (nginx: master and worker). */
function withChildren(pid: number): number[] {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    return [pid, ...children.map(Number)];
  } catch {
    return [pid];
  }
}

/** HTTP/2 connections to a target's origins, re-dialled after GOAWAY or loss. */
function connections(target: Target) {
  const sessions: Array<http2.ClientHttp2Session | undefined> = target.origins.map(() => undefined);
  let next = 0;
  return {
    get(): http2.ClientHttp2Session {
      const i = next++ % sessions.length;
      let s = sessions[i];
      if (s === undefined || s.closed || s.destroyed) {
        s = http2.connect(target.origins[i]!, { settings: { initialWindowSize: 1 << 20 } });
        s.on("error", () => {});
        s.on("goaway", () => {
          if (sessions[i] === s) sessions[i] = undefined;
        });
        sessions[i] = s;
      }
      return s;
    },
    close() {
      for (const s of sessions) s?.close();
    },
  };
}

/** One call; true when it ended with grpc-status 0 after all of the workload's messages. */
function call(session: http2.ClientHttp2Session, workload: Workload): Promise<boolean> {
  return new Promise((resolve) => {
    let ok = false;
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request({
        ":method": "POST",
        ":path": workload.path,
        "content-type": "application/grpc",
        te: "trailers",
      });
    } catch {
      resolve(false);
      return;
    }
    const received = new MessageCounter();
    req.on("data", (chunk: Buffer) => received.push(chunk));
    req.on("trailers", (t) => {
      ok = t["grpc-status"] === "0";
    });
    req.on("error", () => {});
    req.on("close", () => resolve(ok && received.count === workload.messages));
    req.end(workload.body);
  });
}

interface Slice {
  /** Proxy CPU time per call in microseconds (NaN without a proxy). */
  cpuPerCallUs: number;
  callsPerSecond: number;
  p50: number;
  p99: number;
  failed: number;
}

/** `concurrency` workers call back to back for `ms`. */
async function runSlice(target: Target, workload: Workload, ms: number): Promise<Slice> {
  const conns = connections(target);
  const latencies: number[] = [];
  let failed = 0;
  const pids = target.pids?.() ?? [];
  const cpu0 = cpuMs(pids);
  const started = performance.now();
  const end = started + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        if (await call(conns.get(), workload)) latencies.push(performance.now() - t0);
        else failed++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = cpuMs(pids) - cpu0;
  conns.close();
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return {
    callsPerSecond: latencies.length / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    failed,
    cpuPerCallUs: pids.length > 0 ? (cpu * 1000) / latencies.length : Number.NaN,
  };
}

/** nginx with a generated config in a temp dir: one worker, round robin, upstream keepalive. */
async function startNginx(
  backends: BackendProcess[],
): Promise<{ origin: string; pids(): number[]; stop(): void } | undefined> {
  if (spawnSync("sh", ["-c", "command -v nginx"]).status !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "meshlite-bench-nginx-"));
  for (const d of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) mkdirSync(join(dir, d));
  const host = "127.0.0.79";
  const port = await closedPort(host);
  const config = `
worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_requests 10000000;
  http2_max_concurrent_streams 1024;
  upstream echo {
${backends.map((b) => `    server ${b.address};`).join("\n")}
    keepalive 128;
    keepalive_requests 10000000;
  }
  server {
    listen ${host}:${port} http2;
    location / { grpc_pass grpc://echo; }
  }
}
`;
  writeFileSync(join(dir, "nginx.conf"), config);
  const child = spawn("nginx", ["-p", dir, "-c", join(dir, "nginx.conf")], { stdio: ["ignore", "ignore", "inherit"] });
  const origin = `http://${host}:${port}`;
  await waitFor(
    `nginx to answer (see ${dir}/error.log)`,
    async () => {
      const s = http2.connect(origin);
      s.on("error", () => {});
      const ok = await call(s, unary);
      s.close();
      return ok;
    },
    { timeoutMs: 10_000, intervalMs: 100 },
  );
  return {
    origin,
    pids: () => withChildren(child.pid!),
    stop() {
      child.kill("SIGTERM");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One workload's table: medians over rounds, ratios against nginx's row. */
function printTable(workload: Workload, targets: Target[], results: Map<string, Slice[]>) {
  const rows = targets.map((t) => {
    const slices = results.get(t.name)!;
    return {
      name: t.name,
      rps: median(slices.map((s) => s.callsPerSecond)),
      p50: median(slices.map((s) => s.p50)),
      p99: median(slices.map((s) => s.p99)),
      failed: slices.reduce((n, s) => n + s.failed, 0),
      cpu: median(slices.map((s) => s.cpuPerCallUs)),
    };
  });
  const ref = rows.find((r) => r.name === "nginx grpc_pass");
  // A stream's table also gives the proxy's CPU per message (per call / messages per call).
  const perMessage = workload.messages > 1;
  console.log(
    `\n${workload.title}, concurrency ${concurrency}, ${rounds} rounds x ${sliceMs} ms slices, medians; 4 backends, round robin`,
  );
  if (perMessage) console.log(`(a call is one whole stream: calls/s, p50 and p99 are per stream)`);
  console.log(
    `| target | calls/s | p50 ms | p99 ms | proxy CPU us/call | ${perMessage ? "proxy CPU us/message | " : ""}failed | calls/s vs nginx | p99 vs nginx |`,
  );
  console.log(`|---|---:|---:|---:|---:|${perMessage ? "---:|" : ""}---:|---:|---:|`);
  for (const r of rows) {
    const vs = ref ? `${(r.rps / ref.rps).toFixed(2)}x | ${(r.p99 / ref.p99).toFixed(2)}x` : "- | -";
    const cpu = Number.isNaN(r.cpu) ? "-" : r.cpu.toFixed(0);
    const cpuPerMessage = perMessage ? `${Number.isNaN(r.cpu) ? "-" : (r.cpu / workload.messages).toFixed(2)} | ` : "";
    console.log(
      `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${cpu} | ${cpuPerMessage}${r.failed} | ${vs} |`,
    );
  }
}

async function main() {
  const selected = selectedWorkloads();
  const backends = await Promise.all([71, 72, 73, 74].map((n) => startBackendProcess(`127.0.0.${n}`)));
  const targetArg = `static:///${backends.map((b) => b.address).join(",")}`;
  let proxy: ProxyProcess | undefined;
  let proxy2: ProxyProcess | undefined;
  let streams: ProxyProcess | undefined;
  let nginx: Awaited<ReturnType<typeof startNginx>>;
  try {
    // The build when there is one (`pnpm build`), as users run it; else the source through tsx.
    const built = existsSync(fileURLToPath(new URL("../packages/proxy/dist/cli.js", import.meta.url)));
    console.log(
      `meshlite-proxy from ${built ? "its build (dist)" : "source (tsx); run pnpm build first to bench the build"}`,
    );
    // The default engine, frames: meshlite's own HTTP/2 sessions on both sides.
    proxy = await startProxyProcess(
      ["--listen", "127.0.0.78:0", "--target", targetArg, "--balancer", "round-robin", "--workers", "1"],
      {
        fromSource: false,
      },
    );
    // --workers 2: the primary hands connections to the workers in turn, so the
    // client holds two connections to it (one per worker).
    proxy2 = await startProxyProcess(
      ["--listen", "127.0.0.77:0", "--target", targetArg, "--balancer", "round-robin", "--workers", "2"],
      { fromSource: false },
    );
    // The streams engine: node:http2 sessions and stream objects on both sides.
    streams = await startProxyProcess(
      [
        ...["--listen", "127.0.0.76:0", "--target", targetArg, "--balancer", "round-robin", "--workers", "1"],
        ...["--engine", "streams"],
      ],
      { fromSource: false },
    );
    nginx = await startNginx(backends);
    const targets: Target[] = [
      { name: "direct (4 connections)", origins: backends.map((b) => `http://${b.address}`) },
      { name: "meshlite-proxy", origins: [`http://${proxy.address}`], pids: () => [proxy!.child.pid!] },
      {
        name: "meshlite-proxy --engine streams",
        origins: [`http://${streams.address}`],
        pids: () => [streams!.child.pid!],
      },
      {
        name: "meshlite-proxy --workers 2 (2 connections)",
        origins: [`http://${proxy2.address}`, `http://${proxy2.address}`],
        pids: () => withChildren(proxy2!.child.pid!),
      },
    ];
    if (nginx) targets.push({ name: "nginx grpc_pass", origins: [nginx.origin], pids: nginx.pids });
    else console.log("nginx not found: skipping it (apt-get install -y nginx-light)");

    console.log(`warming up (${targets.length} targets, ${selected.map((w) => w.name).join(" and ")})...`);
    for (const w of selected) for (const t of targets) await runSlice(t, w, 1000);

    const results = new Map(selected.map((w) => [w, new Map<string, Slice[]>(targets.map((t) => [t.name, []]))]));
    for (let round = 0; round < rounds; round++) {
      // Every workload in every round, which goes first alternating, so both
      // see the same drift of the machine; within one, the targets' order
      // rotates so no target always runs first or last.
      const inTurn = round % 2 === 0 ? selected : [...selected].reverse();
      for (const w of inTurn) {
        const slices = results.get(w)!;
        const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
        for (const t of order) slices.get(t.name)!.push(await runSlice(t, w, sliceMs));
      }
      process.stdout.write(`round ${round + 1}/${rounds} done\n`);
    }

    for (const w of selected) printTable(w, targets, results.get(w)!);
  } finally {
    nginx?.stop();
    proxy?.kill();
    proxy2?.kill();
    streams?.kill();
    await proxy?.exited;
    await proxy2?.exited;
    await streams?.exited;
    await Promise.all(backends.map((b) => b.stop()));
  }
}

await main();
