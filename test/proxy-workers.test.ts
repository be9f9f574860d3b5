import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { type ProxyProcess, proxyBin, startProxyProcess } from "./support/proxy-process.js";
import { waitFor } from "./support/wait-for.js";

// Address block 127.0.110.x: the proxy on .1, backends on .2 and .3.
let backends: EchoBackend[];
/** Deadlines for a machine shared with other work: starting a worker loads the CLI through tsx. */
const slow = { timeoutMs: 60_000 };
let target: string;

beforeAll(async () => {
  backends = await Promise.all([2, 3].map((n) => startEchoBackend({ host: `127.0.110.${n}` })));
  target = `static:///${backends.map((b) => b.address).join(",")}`;
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.close()));
});

function start(workers: number, ...extra: string[]): Promise<ProxyProcess> {
  return startProxyProcess(
    [
      ...["--listen", "127.0.110.1:0", "--admin", "127.0.110.1:0", "--target", target],
      ...["--workers", String(workers), ...extra],
    ],
    { timeoutMs: 90_000 },
  );
}

/** A client with its own HTTP/2 connection: the primary hands connections, not calls, to the workers. */
function client(proxy: ProxyProcess) {
  return createClient(EchoService, createGrpcTransport({ baseUrl: `http://${proxy.address}` }));
}

async function metrics(proxy: ProxyProcess): Promise<string> {
  return (await fetch(`http://${proxy.admin}/metrics`)).text();
}

/** The value of one series, or 0 when it is not there. */
function value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

/** The sum of a family's series (e.g. a gauge over every worker). */
function total(text: string, name: string): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

interface Health {
  ready: boolean;
  workers: Array<{ worker: number; pid?: number; up: boolean }>;
}

async function health(proxy: ProxyProcess): Promise<{ status: number; body: Health }> {
  const r = await fetch(`http://${proxy.admin}/healthz`);
  return { status: r.status, body: (await r.json()) as Health };
}

/** Waits until /healthz is 200 (every worker up), and returns that answer. */
function allReady(proxy: ProxyProcess): Promise<{ status: number; body: Health }> {
  return waitFor(
    "every worker ready",
    async () => {
      const h = await health(proxy);
      return h.status === 200 ? h : undefined;
    },
    slow,
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("meshlite-proxy --workers", () => {
  it("spreads client connections over the workers and counts every call exactly once in /metrics", async () => {
    const proxy = await start(2);
    try {
      await allReady(proxy);
      const clients = Array.from({ length: 6 }, () => client(proxy));
      for (let i = 0; i < 10; i++) await Promise.all(clients.map((c) => c.echo({ message: "m" })));
      const text = await metrics(proxy);
      const route = `route="${target}"`;
      expect(value(text, `meshlite_proxy_calls_total{${route},code="0"}`)).toBe(60);
      expect(value(text, `meshlite_proxy_call_duration_seconds_count{${route}}`)).toBe(60);
      expect(value(text, `meshlite_proxy_call_duration_seconds_bucket{${route},le="+Inf"}`)).toBe(60);
      const perWorker = [0, 1].map((w) => value(text, `meshlite_proxy_worker_calls_total{worker="${w}"}`));
      expect(perWorker[0]! + perWorker[1]!).toBe(60);
      expect(perWorker[0]).toBeGreaterThan(0);
      expect(perWorker[1]).toBeGreaterThan(0);
      expect(value(text, "meshlite_proxy_workers")).toBe(2);
      // Gauges stay per worker, so the text has each family's HELP and TYPE once.
      expect(text).toContain('meshlite_proxy_in_flight{worker="1"} 0');
      expect(text.match(/^# TYPE meshlite_proxy_in_flight gauge$/gm)).toHaveLength(1);
      expect(value(text, 'meshlite_proxy_worker_resident_memory_bytes{worker="0"}')).toBeGreaterThan(1e6);
    } finally {
      proxy.kill();
      expect(await proxy.exited).toBe(0);
    }
  }, 180_000);

  it("drains every worker on SIGTERM: calls in flight finish, all workers exit, the primary exits 0", async () => {
    const proxy = await start(2, "--grace-ms", "20000");
    const { body } = await allReady(proxy);
    const pids = body.workers.map((w) => w.pid!);
    const clients = Array.from({ length: 4 }, () => client(proxy));
    const calls = clients.flatMap((c) =>
      Array.from({ length: 5 }, () => c.echo({ message: "slow", delayMs: 10_000 }).then((r) => r.message)),
    );
    const settled = Promise.allSettled(calls);
    await waitFor(
      "20 calls in flight over both workers",
      async () => {
        const text = await metrics(proxy);
        return (
          total(text, "meshlite_proxy_in_flight") === 20 &&
          value(text, 'meshlite_proxy_in_flight{worker="0"}') > 0 &&
          value(text, 'meshlite_proxy_in_flight{worker="1"}') > 0
        );
      },
      slow,
    );
    proxy.kill("SIGTERM");
    const results = await settled;
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    expect(await proxy.exited).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    const drained = proxy.logs.filter((l) => l.includes('"msg":"draining"')).map((l) => JSON.parse(l));
    expect(drained.map((e) => e.worker).sort()).toEqual([0, 1]);
  }, 180_000);

  it("replaces a worker that was killed, and calls go on", async () => {
    const proxy = await start(2);
    try {
      const { body } = await allReady(proxy);
      const killed = body.workers[0]!.pid!;
      process.kill(killed, "SIGKILL");
      const after = await waitFor(
        "worker 0 replaced and ready",
        async () => {
          const h = await health(proxy);
          const w0 = h.body.workers[0]!;
          return h.status === 200 && w0.pid !== killed ? h.body : undefined;
        },
        slow,
      );
      expect(after.workers.map((w) => w.up)).toEqual([true, true]);
      expect(proxy.logs.some((l) => l.includes("worker exited, restarting it") && l.includes(`"pid":${killed}`))).toBe(
        true,
      );
      const clients = Array.from({ length: 4 }, () => client(proxy));
      const replies = await Promise.all(clients.map((c) => c.echo({ message: "after" })));
      expect(replies.map((r) => r.message)).toEqual(["after", "after", "after", "after"]);
      const text = await metrics(proxy);
      expect(value(text, "meshlite_proxy_worker_restarts_total")).toBe(1);
      expect(value(text, 'meshlite_proxy_worker_calls_total{worker="0"}')).toBeGreaterThan(0);
    } finally {
      proxy.kill();
      expect(await proxy.exited).toBe(0);
    }
  }, 180_000);

  it("rejects a bad worker count on the command line and in a config file, with exit code 2", () => {
    const env = { ...process.env, MESHLITE_PROXY_FROM_SOURCE: "1" };
    for (const bad of ["0", "1.5", "two"]) {
      const r = spawnSync(process.execPath, [proxyBin, "--target", "static:///127.0.110.2:1", `--workers=${bad}`], {
        encoding: "utf8",
        env,
      });
      expect(r.status, bad).toBe(2);
      expect(r.stderr).toContain(`--workers: expected an integer >= 1 (worker processes; default`);
      expect(r.stderr).toContain(`got ${JSON.stringify(bad)}`);
    }
    const dir = mkdtempSync(join(tmpdir(), "meshlite-proxy-workers-"));
    try {
      const file = join(dir, "proxy.yaml");
      writeFileSync(file, "workers: 0\nroutes:\n  - target: static:///127.0.110.2:1\n");
      const r = spawnSync(process.execPath, [proxyBin, "--config", file], { encoding: "utf8", env });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`config file ${file}: workers: expected an integer >= 1`);
    } finally {
      rmSync(dir, { recursive: true });
    }
  }, 180_000);
});
