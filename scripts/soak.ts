// A fault soak: steady load of an idempotent and a non-idempotent method,
// through a channel on DNS, a channel on the Kubernetes API (the faithful
// list/watch server) and meshlite-proxy (its clients are channels too),
// while faults overlap at random: graceful rollouts, SIGKILL of pods,
// max-connection-age GOAWAYs, a black-holed pod (a forwarder that stops
// forwarding), a slow pod, the DNS server stopped and answers that flap, the
// API server restarting and expiring watches (410 Gone), and the caller's own
// event loop stalled for 200 ms to 2 s. Prints what happened to the calls
// by fault and code, heap after GC over the run, and the handles left after
// close(); exits 1 when a goal is missed (idempotent calls lost, heap
// growth, handles left).
//   pnpm soak                 (about 3 minutes)
//   pnpm soak --minutes 1     (the CI length)
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createProxy } from "@meshlite/proxy";
import "@meshlite/resolver-k8s";
import { createChannel } from "meshlite";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type BackendProcess, startBackendProcess } from "../test/support/backend-process.js";
import { startDnsmasq } from "../test/support/dnsmasq.js";
import { startFakeKubeApiServer } from "../test/support/fake-kube-apiserver.js";
import { closedPort } from "../test/support/free-port.js";
import { startTcpForwarder } from "../test/support/tcp-forwarder.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const minutesFlag = process.argv.indexOf("--minutes");
const minutes = minutesFlag >= 0 ? Number(process.argv[minutesFlag + 1]) : 3;
if (!(minutes > 0)) {
  console.error(`soak: --minutes takes a number of minutes > 0, got ${JSON.stringify(process.argv[minutesFlag + 1])}`);
  process.exit(2);
}
const durationMs = minutes * 60_000;
const ratePerPath = 30; // calls/s through each channel, and as many through the proxy
const name = "soak.test";

const handlesAtStart = countHandles();
const dns = await startDnsmasq({ ttl: 1 });
const api = await startFakeKubeApiServer();
const kubeconfigPath = api.writeKubeconfig();
const port = await closedPort("127.0.0.1");
let nextIp = 1;
const pods: BackendProcess[] = [];
/** Pods a fault is working on now: no other fault takes them. */
const busy = new Set<BackendProcess>();
async function startPod(): Promise<BackendProcess> {
  const pod = await startBackendProcess(`127.0.13.${nextIp++}`, { port, killAfterMs: 5000 });
  pods.push(pod);
  return pod;
}
/** Pod addresses that are not a BackendProcess of their own (the black-holed pod's forwarder). */
const extraHosts = new Set<string>();
async function publish() {
  const hosts = [...pods.map((p) => p.host), ...extraHosts];
  api.applySlice("soak", {
    name: "soak-1",
    service: "soak",
    endpoints: hosts.map((ip) => ({ ip })),
    ports: [{ name: "grpc", port }],
  });
  await dns.setHosts({ [name]: hosts });
}
for (let i = 0; i < 4; i++) await startPod();
await publish();

const target = `dns://${dns.address}/${name}:${port}`;
const keepalive = { intervalMs: 1000, timeoutMs: 2000 };
const channel = createChannel({ target, logger: silentLogger, keepalive });
const k8sChannel = createChannel({
  target: "k8s:///soak.soak:grpc",
  logger: silentLogger,
  keepalive,
  resolverOptions: { kubeconfigPath, reconnectMaxMs: 2000 },
});
const proxy = createProxy({ logger: silentLogger, routes: [{ target, keepalive }] });
const { port: proxyPort } = await proxy.listen("127.0.13.200:0");
const proxyChannel = createChannel({ target: `static:///127.0.13.200:${proxyPort}`, logger: silentLogger });
const paths = {
  channel: createClient(EchoService, channel),
  k8s: createClient(EchoService, k8sChannel),
  proxy: createClient(EchoService, proxyChannel),
};

// What happened, by path, method kind, the faults going on when the call started, and code.
const outcomes = new Map<string, number>();
const active = new Set<string>();
let sent = 0;
let inFlight = 0;
const inFlightAtKills: number[] = [];
/** The first failures, with their messages. */
const failures: string[] = [];
function record(key: string) {
  outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
}

async function oneCall(path: keyof typeof paths, idempotent: boolean) {
  const faults = active.size === 0 ? "none" : [...active].sort().join("+");
  sent++;
  inFlight++;
  try {
    const client = paths[path];
    await (idempotent
      ? client.echoIdempotent({ message: "s" }, { timeoutMs: 10_000 })
      : client.echo({ message: "s" }, { timeoutMs: 10_000 }));
    record(`${path}\t${idempotent ? "idempotent" : "other"}\t${faults}\tok`);
  } catch (e) {
    const error = ConnectError.from(e);
    record(`${path}\t${idempotent ? "idempotent" : "other"}\t${faults}\t${Code[error.code]}`);
    if (failures.length < 10)
      failures.push(`${path} ${idempotent ? "idempotent" : "other"} (${faults}): ${error.message}`);
  } finally {
    inFlight--;
  }
}

const pending = new Set<Promise<void>>();
const end = performance.now() + durationMs;
function startLoad() {
  let n = 0;
  const timer = setInterval(() => {
    const idempotent = n++ % 2 === 0;
    for (const path of ["channel", "k8s", "proxy"] as const) {
      const p = oneCall(path, idempotent);
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
  }, 1000 / ratePerPath);
  return () => clearInterval(timer);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const random = (from: number, to: number) => from + Math.random() * (to - from);
function anyPod(): BackendProcess | undefined {
  const free = pods.filter((p) => !busy.has(p));
  // Keep three pods that no fault touches at least.
  return free.length > 3 ? free[Math.floor(Math.random() * free.length)] : undefined;
}
function blockLoop(ms: number) {
  const until = performance.now() + ms;
  while (performance.now() < until) {}
}
async function removePod(pod: BackendProcess) {
  pods.splice(pods.indexOf(pod), 1);
  await publish();
}

const faults: Record<string, () => Promise<void>> = {
  async rollout() {
    const old = anyPod();
    if (!old) return;
    busy.add(old);
    const fresh = await startPod();
    busy.add(fresh);
    await publish();
    await sleep(1500);
    // As Kubernetes does: the pod leaves the endpoints, then gets SIGTERM.
    await removePod(old);
    await sleep(1000);
    await old.stop();
    busy.delete(old);
    busy.delete(fresh);
  },
  async sigkill() {
    const victim = anyPod();
    if (!victim) return;
    busy.add(victim);
    inFlightAtKills.push(inFlight);
    await victim.kill();
    await sleep(1000);
    await removePod(victim);
    busy.delete(victim);
    await startPod();
    await publish();
  },
  async connectionAge() {
    // As a server with MAX_CONNECTION_AGE does: GOAWAY, calls in flight finish, clients reconnect.
    const pod = anyPod();
    if (!pod) return;
    busy.add(pod);
    for (let i = 0; i < 3; i++) {
      await pod.goaway();
      await sleep(1500);
    }
    busy.delete(pod);
  },
  async blackHole() {
    // A pod behind a forwarder that takes traffic, then stops forwarding
    // without closing anything (a dead node): keepalive must find it.
    const n = nextIp++;
    const backend = await startBackendProcess(`127.0.12.${n}`, { killAfterMs: 5000 });
    const forwarder = await startTcpForwarder(`127.0.13.${n}`, backend, { port });
    extraHosts.add(forwarder.host);
    await publish();
    await sleep(3000);
    forwarder.blackhole();
    await sleep(6000);
    extraHosts.delete(forwarder.host);
    await publish();
    await sleep(1000);
    await forwarder.close();
    await backend.kill();
  },
  async kubeRestart() {
    await api.stop();
    await sleep(random(1000, 5000));
    await api.start();
  },
  async kubeExpire() {
    // The watch cache fell behind: every watch gets ERROR 410 and must list again.
    api.expireWatches();
    await sleep(2000);
  },
  async slowPod() {
    const pod = anyPod();
    if (!pod) return;
    busy.add(pod);
    await pod.setDelay(300);
    await sleep(4000);
    await pod.setDelay(0);
    busy.delete(pod);
  },
  async dnsDown() {
    await dns.stop();
    await sleep(Math.min(30_000, durationMs / 6));
    await dns.start();
  },
  async dnsFlap() {
    const keep = pods.slice(0, 2);
    for (let i = 0; i < 3; i++) {
      await dns.setHosts({ [name]: keep.map((p) => p.host) });
      await sleep(700);
      await publish();
      await sleep(700);
    }
  },
  async loopStall() {
    for (let i = 0; i < 3; i++) {
      blockLoop(random(200, 2000));
      await sleep(random(300, 1500));
    }
  },
};

async function runFault(kind: string) {
  active.add(kind);
  try {
    await faults[kind]?.();
  } catch (e) {
    console.error(`soak: fault ${kind} failed to run: ${String(e)}`);
  } finally {
    active.delete(kind);
  }
}

// Every path resolved and connected (the k8s resolver loads its client
// library on first use), then warm up, then measure the heap from here.
await Promise.all(Object.values(paths).map((client) => client.echo({ message: "ready" }, { timeoutMs: 60_000 })));
const stopLoad = startLoad();
await sleep(3000);
const heap: number[] = [heapAfterGc()];
const heapTimer = setInterval(() => heap.push(heapAfterGc()), 10_000);
const running = new Set<Promise<void>>();
const kinds = Object.keys(faults);
while (performance.now() < end - 8000) {
  // At most two faults at once, each kind once at a time.
  const free = kinds.filter((k) => !active.has(k));
  if (running.size < 2 && free.length > 0) {
    const p = runFault(free[Math.floor(Math.random() * free.length)] as string);
    running.add(p);
    void p.finally(() => running.delete(p));
  }
  await sleep(random(1000, 3000));
}
await Promise.all(running);
await sleep(5000);
stopLoad();
await Promise.all(pending);
clearInterval(heapTimer);
heap.push(heapAfterGc());

await Promise.all([channel.close(), k8sChannel.close(), proxyChannel.close()]);
await proxy.close();
await Promise.all(pods.map((p) => p.kill()));
await dns.close();
await api.close();
await sleep(200);
const handlesLeft = diffHandles(countHandles(), handlesAtStart);

// The table.
console.log(`\nsoak: ${minutes} min, ${sent} calls (${ratePerPath}/s per path, half idempotent)`);
console.log(["path", "method", "faults at start", "code", "calls"].join("\t"));
for (const [key, n] of [...outcomes].sort()) console.log(`${key}\t${n}`);
const lost = [...outcomes].filter(([k]) => k.includes("\tidempotent\t") && !k.endsWith("\tok"));
const otherFailed = [...outcomes]
  .filter(([k]) => k.includes("\tother\t") && !k.endsWith("\tok"))
  .reduce((a, [, n]) => a + n, 0);
const lostCount = lost.reduce((a, [, n]) => a + n, 0);
const growthMb = ((heap.at(-1) as number) - (heap[0] as number)) / 2 ** 20;
if (failures.length > 0) console.log(`\nfirst failures:\n  ${failures.join("\n  ")}`);
console.log(`\nidempotent calls lost: ${lostCount} (goal 0)`);
console.log(
  `non-idempotent calls failed: ${otherFailed}; calls in flight (all kinds, both paths) at each SIGKILL: ${inFlightAtKills.join(", ") || "no kill"}`,
);
console.log(
  `heap after GC (MB): ${heap.map((h) => (h / 2 ** 20).toFixed(1)).join(" ")}; growth ${growthMb.toFixed(1)} MB (goal < 10)`,
);
console.log(`handles left after close(): ${JSON.stringify(handlesLeft)} (goal none)`);
const ok = lostCount === 0 && growthMb < 10 && Object.keys(handlesLeft).length === 0;
console.log(ok ? "soak: every goal met" : "soak: GOAL MISSED");
process.exit(ok ? 0 : 1);

function heapAfterGc(): number {
  gc();
  return process.memoryUsage().heapUsed;
}
function countHandles(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const type of process.getActiveResourcesInfo()) counts[type] = (counts[type] ?? 0) + 1;
  return counts;
}
function diffHandles(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const left: Record<string, number> = {};
  for (const [type, n] of Object.entries(now)) if (n > (before[type] ?? 0)) left[type] = n - (before[type] ?? 0);
  return left;
}
