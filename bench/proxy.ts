// Unary gRPC throughput and p99 latency at a fixed concurrency through
// meshlite-proxy, through nginx `grpc_pass` (when nginx is installed), and
// straight to the backends, in one run on the same four backends. Each target
// gets short slices, interleaved and rotated round by round; the figures are
// medians over rounds. Both proxies run one process (nginx: one worker) and
// round-robin over the four backends; the client holds one HTTP/2
// connection to a proxy (four, one per backend, for direct; two for the
// proxy with --workers 2, one per worker).
// Run: pnpm bench:proxy   (CONCURRENCY=64 ROUNDS=5 SLICE_MS=2000)
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
import { median } from "./support/stats.js";

const concurrency = Number(process.env.CONCURRENCY ?? 64);
const rounds = Number(process.env.ROUNDS ?? 5);
const sliceMs = Number(process.env.SLICE_MS ?? 2000);

// EchoRequest { message: "hello" } in a gRPC envelope; the proxies never decode it.
const payload = Buffer.from([0x0a, 5, ...Buffer.from("hello")]);
const body = Buffer.concat([Buffer.from([0, 0, 0, 0, payload.length]), payload]);
const path = "/meshlite.echo.v1.EchoService/Echo";

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

function call(session: http2.ClientHttp2Session): Promise<boolean> {
  return new Promise((resolve) => {
    let ok = false;
    let req: http2.ClientHttp2Stream;
    try {
      req = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
    } catch {
      resolve(false);
      return;
    }
    req.on("trailers", (t) => {
      ok = t["grpc-status"] === "0";
    });
    req.on("error", () => {});
    req.on("close", () => resolve(ok));
    req.resume();
    req.end(body);
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
async function runSlice(target: Target, ms: number): Promise<Slice> {
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
        if (await call(conns.get())) latencies.push(performance.now() - t0);
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
      const ok = await call(s);
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

async function main() {
  const backends = await Promise.all([71, 72, 73, 74].map((n) => startBackendProcess(`127.0.0.${n}`)));
  const targetArg = `static:///${backends.map((b) => b.address).join(",")}`;
  let proxy: ProxyProcess | undefined;
  let proxy2: ProxyProcess | undefined;
  let frames: ProxyProcess | undefined;
  let nginx: Awaited<ReturnType<typeof startNginx>>;
  try {
    // The build when there is one (`pnpm build`), as users run it; else the source through tsx.
    const built = existsSync(fileURLToPath(new URL("../packages/proxy/dist/cli.js", import.meta.url)));
    console.log(
      `meshlite-proxy from ${built ? "its build (dist)" : "source (tsx); run pnpm build first to bench the build"}`,
    );
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
    // The frame engine: client HTTP/2 terminated by meshlite's own session (upstream still node:http2).
    frames = await startProxyProcess(
      [
        ...["--listen", "127.0.0.76:0", "--target", targetArg, "--balancer", "round-robin", "--workers", "1"],
        ...["--engine", "frames"],
      ],
      { fromSource: false },
    );
    nginx = await startNginx(backends);
    const targets: Target[] = [
      { name: "direct (4 connections)", origins: backends.map((b) => `http://${b.address}`) },
      { name: "meshlite-proxy", origins: [`http://${proxy.address}`], pids: () => [proxy!.child.pid!] },
      {
        name: "meshlite-proxy --engine frames",
        origins: [`http://${frames.address}`],
        pids: () => [frames!.child.pid!],
      },
      {
        name: "meshlite-proxy --workers 2 (2 connections)",
        origins: [`http://${proxy2.address}`, `http://${proxy2.address}`],
        pids: () => withChildren(proxy2!.child.pid!),
      },
    ];
    if (nginx) targets.push({ name: "nginx grpc_pass", origins: [nginx.origin], pids: nginx.pids });
    else console.log("nginx not found: skipping it (apt-get install -y nginx-light)");

    console.log(`warming up (${targets.length} targets)...`);
    for (const t of targets) await runSlice(t, 1000);

    const results = new Map<string, Slice[]>(targets.map((t) => [t.name, []]));
    for (let round = 0; round < rounds; round++) {
      // Rotate the order so no target always runs first or last.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const t of order) results.get(t.name)!.push(await runSlice(t, sliceMs));
      process.stdout.write(`round ${round + 1}/${rounds} done\n`);
    }

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
    console.log(
      `\nunary Echo, concurrency ${concurrency}, ${rounds} rounds x ${sliceMs} ms slices, medians; 4 backends, round robin`,
    );
    console.log(
      "| target | calls/s | p50 ms | p99 ms | proxy CPU us/call | failed | calls/s vs nginx | p99 vs nginx |",
    );
    console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (const r of rows) {
      const vs = ref ? `${(r.rps / ref.rps).toFixed(2)}x | ${(r.p99 / ref.p99).toFixed(2)}x` : "- | -";
      const cpu = Number.isNaN(r.cpu) ? "-" : r.cpu.toFixed(0);
      console.log(
        `| ${r.name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${cpu} | ${r.failed} | ${vs} |`,
      );
    }
  } finally {
    nginx?.stop();
    proxy?.kill();
    proxy2?.kill();
    frames?.kill();
    await proxy?.exited;
    await proxy2?.exited;
    await frames?.exited;
    await Promise.all(backends.map((b) => b.stop()));
  }
}

await main();
