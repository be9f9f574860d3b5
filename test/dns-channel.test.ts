import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type Dnsmasq, skipDnsTests, startDnsmasq } from "./support/dnsmasq.js";
import type { EchoBackend } from "./support/echo-backend.js";
import { startLoad } from "./support/load.js";
import { type SamePortBackends, startSamePortBackends } from "./support/same-port-backends.js";
import { timeToShare } from "./support/time-to-share.js";
import { waitFor } from "./support/wait-for.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    await cleanup();
  }
});

async function dnsServer(ttl: number): Promise<Dnsmasq> {
  const dns = await startDnsmasq({ ttl });
  cleanups.push(() => dns.close());
  return dns;
}

async function backends(hosts: string[]): Promise<SamePortBackends> {
  const group = await startSamePortBackends(hosts, { delayMs: 10 });
  cleanups.push(() => group.closeAll());
  return group;
}

const hostsOf = (list: readonly EchoBackend[]) => list.map((b) => b.host);

describe.skipIf(skipDnsTests())("dns: target through a channel, against dnsmasq and real backends", () => {
  it("follows a scale-up and a scale-down of a headless service (TTL 5 s, default options) with no failed call", async () => {
    const dns = await dnsServer(5);
    const group = await backends(["127.0.53.41", "127.0.53.42"]);
    const [a, b] = group.all as [EchoBackend, EchoBackend];
    await dns.setHosts({ "orders.test": hostsOf([a, b]) });
    const channel = createChannel({ target: `dns://${dns.address}/orders.test:${group.port}` });
    cleanups.push(() => channel.close());
    const client = createClient(EchoService, channel);
    const load = startLoad(() => client.echo({ message: "x" }), { concurrency: 4, intervalMs: 2 });
    cleanups.push(async () => void (await load.stop()));
    await waitFor("calls on both backends", () => a.totalCalls() > 20 && b.totalCalls() > 20);

    // Scale up: a third pod appears in the headless Service.
    const c = await group.start("127.0.53.43");
    await dns.setHosts({ "orders.test": hostsOf([a, b, c]) });
    // 3%: slow start (on by default) gives a new pod a tenth of its weight at first,
    // 0.1 / 2.1 of the calls among three, ramping up over 30 s.
    const upMs = await timeToShare(
      c.address,
      { mine: () => c.totalCalls(), total: () => group.all.reduce((sum, b) => sum + b.totalCalls(), 0) },
      0.03,
      { timeoutMs: 15_000 },
    );
    expect(upMs).toBeLessThan(7000);

    // Scale down: a leaves the records; it stays up, so its in-flight calls can finish.
    await waitFor("calls in flight on a", () => a.inFlight() > 0);
    await dns.setHosts({ "orders.test": hostsOf([b, c]) });
    const downAt = performance.now();
    await waitFor("a to leave the channel", () => !channel.snapshot().endpoints.some((e) => e.address === a.address), {
      timeoutMs: 15_000,
    });
    // One refresh: the TTL (5 s) plus at most 10% jitter, and the drain.
    expect(performance.now() - downAt).toBeLessThan(7000);
    const callsOnA = a.totalCalls();
    expect(a.inFlight()).toBe(0);
    load.mark();
    await waitFor("100 more calls", () => [...load.since().values()].reduce((x, y) => x + y, 0) >= 100);
    expect(a.totalCalls()).toBe(callsOnA);

    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
  }, 60_000);

  it("keeps serving through 30 s without DNS, and follows the records again once it is back", async () => {
    const dns = await dnsServer(5);
    const group = await backends(["127.0.53.44", "127.0.53.45"]);
    const [a, b] = group.all as [EchoBackend, EchoBackend];
    await dns.setHosts({ "orders.test": hostsOf([a, b]) });
    const channel = createChannel({ target: `dns://${dns.address}/orders.test:${group.port}`, logger: silentLogger });
    cleanups.push(() => channel.close());
    const client = createClient(EchoService, channel);
    const load = startLoad(() => client.echo({ message: "x" }), { concurrency: 4, intervalMs: 2 });
    cleanups.push(async () => void (await load.stop()));
    await waitFor("calls on both backends", () => a.totalCalls() > 20 && b.totalCalls() > 20);

    await dns.stop();
    // Meanwhile a pod is added; the server will answer with it once it is back.
    const c = await group.start("127.0.53.46");
    await dns.setHosts({ "orders.test": hostsOf([a, b, c]) });
    load.mark();
    // The outage itself: 30 s of load with no DNS server.
    await new Promise((resolve) => setTimeout(resolve, 30_000));
    expect(
      channel
        .snapshot()
        .endpoints.map((e) => e.address)
        .sort(),
    ).toEqual([a.address, b.address].sort());
    expect(load.since().get(a.address)).toBeGreaterThan(100);
    expect(load.since().get(b.address)).toBeGreaterThan(100);
    expect(c.totalCalls()).toBe(0);

    await dns.start();
    const backAt = performance.now();
    await waitFor("calls on the new backend", () => c.totalCalls() > 10, { timeoutMs: 15_000 });
    // Retries are at most minRefreshMs (5 s) apart, so the set follows within about one refresh.
    expect(performance.now() - backAt).toBeLessThan(8000);

    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
  }, 90_000);

  it("survives a rolling replacement of every backend with no failed call", async () => {
    const dns = await dnsServer(1);
    const group = await backends(["127.0.53.47", "127.0.53.48", "127.0.53.49"]);
    let live = [...group.all];
    await dns.setHosts({ "orders.test": hostsOf(live) });
    const channel = createChannel({
      target: `dns://${dns.address}/orders.test:${group.port}`,
      resolverOptions: { minRefreshMs: 1000 },
      logger: silentLogger,
    });
    cleanups.push(() => channel.close());
    const client = createClient(EchoService, channel);
    const load = startLoad(() => client.echo({ message: "x" }), { concurrency: 4, intervalMs: 2 });
    cleanups.push(async () => void (await load.stop()));
    await waitFor("calls on every backend", () => live.every((b) => b.totalCalls() > 5));

    for (const [index, old] of [...live].entries()) {
      // Like a Deployment rollout: the new pod is ready first, then the old one is removed and stops.
      const fresh = await group.start(`127.0.53.${50 + index}`);
      live = [...live.filter((b) => b !== old), fresh];
      await dns.setHosts({ "orders.test": hostsOf(live) });
      await waitFor(`calls on ${fresh.address}`, () => fresh.totalCalls() > 5, { timeoutMs: 15_000 });
      await waitFor(
        `${old.address} to leave the channel`,
        () => !channel.snapshot().endpoints.some((e) => e.address === old.address),
        { timeoutMs: 15_000 },
      );
      await old.close();
    }
    load.mark();
    await waitFor("calls on the new set", () => live.every((b) => (load.since().get(b.address) ?? 0) > 5));
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(result.failed).toBe(0);
  }, 60_000);

  it("close() leaves nothing running, even with a DNS query hanging", async () => {
    // TTL 0: the client looks up every 200 ms (its minRefreshMs), so one is surely in flight.
    const dns = await dnsServer(0);
    const group = await backends(["127.0.53.57"]);
    await dns.setHosts({ "orders.test": hostsOf(group.all) });
    const script = fileURLToPath(new URL("./fixtures/dns-close-client.ts", import.meta.url));
    const tsconfig = fileURLToPath(new URL("../tsconfig.json", import.meta.url));
    const child = spawn(
      process.execPath,
      ["--import", "tsx", script, `dns://${dns.address}/orders.test:${group.port}`],
      {
        env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig },
        stdio: ["pipe", "pipe", "inherit"],
      },
    );
    cleanups.push(async () => {
      dns.resume();
      child.kill("SIGKILL");
    });
    let stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      stdout += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await waitFor("the first call", () => stdout.includes("warm") || child.exitCode !== null);
    dns.pause();
    const goAt = performance.now();
    child.stdin.end("go\n");
    const code = await exited;
    dns.resume();
    expect(stdout).toContain('{"closed":true,"endpoints":0}');
    expect(stdout).toContain("exit 0");
    expect(code).toBe(0);
    // The hanging query (seconds before it times out) was cancelled, not waited for.
    expect(performance.now() - goAt).toBeLessThan(3000);
  });

  it("fails calls to a name that never resolved at their deadline, with the DNS reason", async () => {
    const dns = await dnsServer(5);
    const channel = createChannel({ target: `dns://${dns.address}/missing.test:1234`, logger: silentLogger });
    cleanups.push(() => channel.close());
    const client = createClient(EchoService, channel);
    const error = await client.echo({ message: "x" }, { timeoutMs: 1500 }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.DeadlineExceeded);
    expect(error?.message).toMatch(/DNS name "missing.test" did not resolve: NXDOMAIN/);
  });
});
