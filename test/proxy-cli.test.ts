import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { startLoad } from "./support/load.js";
import { proxyBin, startProxyProcess } from "./support/proxy-process.js";
import { waitFor } from "./support/wait-for.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const fromSource = { ...process.env, MESHLITE_PROXY_FROM_SOURCE: "1" };
let backends: EchoBackend[];
let target: string;

beforeAll(async () => {
  backends = await Promise.all([31, 32, 33, 34].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
  target = `static:///${backends.map((b) => b.address).join(",")}`;
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.close()));
});

describe("meshlite-proxy CLI", () => {
  it("prints its usage through `pnpm exec meshlite-proxy --help` at the repository root", () => {
    const r = spawnSync("pnpm", ["exec", "meshlite-proxy", "--help"], { cwd: root, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("Usage: meshlite-proxy --listen HOST:PORT --target TARGET");
  });

  it("rejects bad flags with a clear message and exit code 2", () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [proxyBin, ...args], { encoding: "utf8", env: fromSource });
    const balancer = run("--target", target, "--balancer", "fastest");
    expect(balancer.status).toBe(2);
    expect(balancer.stderr).toContain(
      'unknown balancer "fastest"; expected one of p2c, least-request, round-robin, weighted-round-robin, pick-first, ring-hash, maglev',
    );
    const neither = run("--listen", "127.0.0.1:0");
    expect(neither.status).toBe(2);
    expect(neither.stderr).toContain("give either --target");
    const listen = run("--target", target, "--listen", "nowhere");
    expect(listen.status).toBe(2);
    expect(listen.stderr).toContain('listen address "nowhere" is not valid');
    const half = run("--target", target, "--upstream-cert", "client.crt");
    expect(half.status).toBe(2);
    expect(half.stderr).toContain("--upstream-cert and --upstream-key go together");
    const engine = run("--target", target, "--engine", "fast");
    expect(engine.status).toBe(2);
    expect(engine.stderr).toContain('--engine: expected one of streams, frames, got "fast"');
  });

  it("rejects an invalid config file, naming the file and the problem", () => {
    const dir = mkdtempSync(join(tmpdir(), "meshlite-proxy-config-"));
    try {
      const file = join(dir, "proxy.yaml");
      writeFileSync(file, "routes:\n  - service: a.B\n    target: static:///127.0.0.1:1\n    balancr: p2c\n");
      const r = spawnSync(process.execPath, [proxyBin, "--config", file], { encoding: "utf8", env: fromSource });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`config file ${file}: routes[0]: unknown key "balancr"`);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it("serves routes from a YAML config file, with /healthz and /metrics on the admin listener", async () => {
    const dir = mkdtempSync(join(tmpdir(), "meshlite-proxy-config-"));
    const file = join(dir, "proxy.yaml");
    writeFileSync(
      file,
      [
        "listen: 127.0.0.30:0",
        "admin: 127.0.0.30:0",
        "routes:",
        "  - name: echo",
        "    service: meshlite.echo.v1.EchoService",
        `    target: ${target}`,
        "    balancer: round-robin",
        "",
      ].join("\n"),
    );
    // One process: the metrics below are one process's (test/proxy-workers.test.ts covers --workers N).
    const proxy = await startProxyProcess(["--config", file, "--workers", "1"]);
    try {
      const admin = `http://${proxy.admin}`;
      await waitFor("readiness", async () => (await fetch(`${admin}/healthz`)).status === 200);
      const client = createClient(EchoService, createGrpcTransport({ baseUrl: `http://${proxy.address}` }));
      for (let i = 0; i < 8; i++) await client.echo({ message: "m" });
      await client.echo({ message: "m", failCode: 5 }).catch(() => {});
      const metrics = await (await fetch(`${admin}/metrics`)).text();
      expect(metrics).toContain('meshlite_proxy_calls_total{route="echo",code="0"} 8');
      expect(metrics).toContain('meshlite_proxy_calls_total{route="echo",code="5"} 1');
      expect(metrics).toContain(
        `meshlite_proxy_endpoint_calls_total{route="echo",endpoint="${backends[0]!.address}",code="0"}`,
      );
      expect(metrics).toContain('meshlite_proxy_call_duration_seconds_bucket{route="echo",le="+Inf"} 9');
      expect(metrics).toContain(
        `meshlite_proxy_endpoint_state{route="echo",endpoint="${backends[3]!.address}",state="ready"} 1`,
      );
    } finally {
      proxy.kill();
      expect(await proxy.exited).toBe(0);
      rmSync(dir, { recursive: true });
    }
  });

  it("drains on SIGTERM under load: zero failed calls, exit code 0", async () => {
    const args = [
      ...["--listen", "127.0.0.30:0", "--target", target, "--balancer", "round-robin", "--grace-ms", "15000"],
      ...["--workers", "1"],
    ];
    const [a, b] = await Promise.all([startProxyProcess(args), startProxyProcess(args)]);
    // A client balancing over the two proxies, as clients of a proxy tier do.
    const channel = createChannel({
      target: `static:///${a!.address},${b!.address}`,
      balancer: "round-robin",
      logger: silentLogger,
    });
    try {
      const client = createClient(EchoService, channel);
      const load = startLoad(() => client.echo({ message: "load", delayMs: 30 }), { concurrency: 8, intervalMs: 2 });
      await waitFor("calls through both proxies", () => load.result.ok >= 200);
      a!.kill("SIGTERM");
      expect(await a!.exited).toBe(0);
      const okAtExit = load.result.ok;
      await waitFor("more calls through the remaining proxy", () => load.result.ok >= okAtExit + 200);
      const result = await load.stop();
      expect(result.errors).toEqual([]);
      expect(result.failed).toBe(0);
      // It drained real work: calls were in flight through it when the signal came.
      const draining = a!.logs.map((l) => JSON.parse(l)).find((e) => e.msg === "draining");
      expect(draining.inFlight).toBeGreaterThan(0);
    } finally {
      await channel.close();
      b!.kill();
      await b!.exited;
    }
  });
});
