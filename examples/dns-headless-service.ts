/**
 * A headless Service on loopback: a real DNS server (dnsmasq, TTL 2 s) names
 * echo backends on 127.0.55.N ("pods"); a meshlite channel with a dns: target
 * spreads calls over them while pods are added and removed and the DNS
 * server goes away for a while. Every second it prints which pods serve how
 * much of the calls.
 *
 * Run: pnpm demo:dns   (needs dnsmasq: apt-get install -y dnsmasq-base)
 */
import { createClient } from "@connectrpc/connect";
import { registerResolver, silentLogger } from "@meshlite/core";
import { createDnsResolver } from "@meshlite/resolvers";
import { createChannel } from "meshlite";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { startDnsmasq } from "../test/support/dnsmasq.js";
import type { EchoBackend } from "../test/support/echo-backend.js";
import { startSamePortBackends } from "../test/support/same-port-backends.js";

registerResolver("dns", createDnsResolver);

const dns = await startDnsmasq({ ttl: 2 });
const pods = await startSamePortBackends(["127.0.55.1", "127.0.55.2"], { delayMs: 5 });
let live: EchoBackend[] = [...pods.all];
const publish = () => dns.setHosts({ "orders.test": live.map((b) => b.host) });
await publish();

const target = `dns://${dns.address}/orders.test:${pods.port}`;
const channel = createChannel({ target, resolverOptions: { minRefreshMs: 2000 }, logger: silentLogger });
const client = createClient(EchoService, channel);
console.log(`target ${target} (dnsmasq TTL 2 s)\n`);

let running = true;
let failed = 0;
let slice = new Map<string, number>();
const workers = Array.from({ length: 4 }, async () => {
  while (running) {
    try {
      const { server } = await client.echo({ message: "hi" });
      slice.set(server, (slice.get(server) ?? 0) + 1);
    } catch {
      failed++;
    }
  }
});

const scene: [number, string, () => Promise<void>][] = [
  [0, "2 pods", async () => {}],
  [
    3,
    "scale up: pod 127.0.55.3 added",
    async () => {
      live.push(await pods.start("127.0.55.3"));
      await publish();
    },
  ],
  [
    9,
    "scale down: pod 127.0.55.1 removed (it keeps running; meshlite drains it)",
    async () => {
      live = live.filter((b) => b.host !== "127.0.55.1");
      await publish();
    },
  ],
  [15, "DNS server stopped: meshlite keeps the last good set", () => dns.stop()],
  [
    18,
    "pod 127.0.55.4 added while DNS is down",
    async () => {
      live.push(await pods.start("127.0.55.4"));
      await publish();
    },
  ],
  [22, "DNS server back", () => dns.start()],
];

const started = performance.now();
for (let second = 0; second <= 28; second++) {
  for (const [at, text, action] of scene) {
    if (at === second) {
      await action();
      console.log(`${String(second).padStart(3)}s  -- ${text}`);
    }
  }
  await new Promise((resolve) => setTimeout(resolve, started + (second + 1) * 1000 - performance.now()));
  const counts = slice;
  slice = new Map();
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const shares = [...counts]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([server, n]) => `${server.replace(/:\d+$/, "")} ${String(Math.round((100 * n) / total)).padStart(3)}%`);
  console.log(`${String(second + 1).padStart(3)}s  ${total} calls/s  ${shares.join("  ")}`);
}

running = false;
await Promise.all(workers);
await channel.close();
await pods.closeAll();
await dns.close();
console.log(`\nfailed calls: ${failed}`);
