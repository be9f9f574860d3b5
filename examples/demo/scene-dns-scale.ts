import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { EchoService } from "../../gen/meshlite/echo/v1/echo_pb.js";
import { type Channel, createChannel } from "../../src/index.js";
import { type DnsServer, startDnsServer } from "./dns-server.js";
import { type GrpcJsClientProcess, startGrpcJsClientProcess } from "./grpc-js-client-process.js";
import { formatTable, shareCell, startLiveView } from "./live-view.js";
import { createRecorder, type Recorder, runOpenLoop } from "./open-loop.js";
import type { DemoBackend, DemoContext, Scene } from "./scene.js";

const name = "orders.demo.test";
const ttlSeconds = 2;
/** Calls per second per client. */
const rate = 100;
/** Scene time (s from the first call) of the scale-up, the scale-down and the end. */
const scaleUpAt = 4;
const scaleDownAt = 11;
/**
 * The removed backend stops this long after it left DNS, like a pod with a
 * preStop sleep (what Kubernetes users do so that clients stop calling first).
 */
const stopAfterS = 3;
const endAt = 18;
/** "Taking its share": a new backend answers at least this part of a second's calls. */
const shareThreshold = 0.1;
const hosts = ["127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14"];

interface Client {
  label: string;
  record: Recorder;
  /** Calls per backend address, by scene second of their completion. */
  seconds: Array<Map<string, number>>;
}

/**
 * A headless Service scales up, then down. meshlite re-resolves at the
 * record TTL and follows; grpc-js re-resolves only when a connection breaks
 * (and at most every 30 s), so it keeps its calls on the first two backends.
 */
export const dnsScaleScene: Scene = {
  title: "Scale-up and scale-down behind DNS",
  intro:
    `A DNS server in this process answers ${name} (TTL ${ttlSeconds} s) with 2 backends, then 4 at ${scaleUpAt} s, ` +
    `then drops one at ${scaleDownAt} s (stopped gracefully ${stopAfterS} s later). meshlite (defaults, resolverOptions: { minRefreshMs: 2000 }) ` +
    `next to plain @grpc/grpc-js (dns:, round_robin), ${rate} calls/s each.`,
  async run(context) {
    const dns = await startDnsServer({ ttlSeconds });
    let grpcJs: GrpcJsClientProcess | undefined;
    let channel: Channel | undefined;
    const killGrpcJs = () => grpcJs?.kill();
    process.once("exit", killGrpcJs);
    const backends: DemoBackend[] = [];
    try {
      backends.push(...(await startSamePort(context, hosts)));
      const [first, second, third, fourth] = backends as [DemoBackend, DemoBackend, DemoBackend, DemoBackend];
      const port = first.address.split(":").at(-1);
      let inDns = [first, second];
      const publish = () =>
        dns.setRecords(
          name,
          inDns.map((b) => b.host),
        );
      publish();
      const target = `dns://${dns.address}/${name}:${port}`;

      const meshlite: Client = { label: "meshlite (p2c)", record: createRecorder(), seconds: [] };
      const grpc: Client = { label: "grpc-js round_robin", record: createRecorder(), seconds: [] };
      const clients = [meshlite, grpc];
      let t0 = Number.POSITIVE_INFINITY;
      const now = () => (performance.now() - t0) / 1000;
      const count = (c: Client, server: string, n = 1) => {
        const s = Math.max(0, Math.floor(now()));
        c.seconds[s] ??= new Map();
        const bucket = c.seconds[s];
        bucket.set(server, (bucket.get(server) ?? 0) + n);
      };

      const events: string[] = [];
      const at = () => `${now().toFixed(1)} s`;
      channel = context.track(
        createChannel({
          target,
          resolverOptions: { minRefreshMs: 2000 },
          logger: context.logger,
          // Only watches: what meshlite did when, for the list under the table.
          onEvent: (event) => {
            if (now() < 0) return;
            const host = "address" in event ? event.address.replace(/:\d+$/, "") : "";
            if (event.type === "endpoint-added") events.push(`${at()}: meshlite connects to ${host}`);
            if (event.type === "endpoint-removed") events.push(`${at()}: meshlite drains ${host}, no new calls to it`);
          },
        }),
      );
      const client = createClient(EchoService, channel);
      grpcJs = await startGrpcJsClientProcess({
        target,
        rate,
        record: grpc.record,
        onCounts: (byServer) => {
          for (const [server, n] of byServer) count(grpc, server, n);
        },
      });
      await client.echo({ message: "warm-up" });

      const state: View = { dns, name, backends, inDns: () => inDns, clients, events, now, removed: undefined };
      const view = startLiveView({ frame: () => frame(state) });
      t0 = performance.now();
      grpcJs.start();
      const meshliteLoad = runOpenLoop({
        rate,
        durationMs: endAt * 1000,
        call: async () => {
          const response = await client.echo({ message: "hello" });
          count(meshlite, response.server);
          return response;
        },
        record: meshlite.record,
        signal: context.signal,
      });
      // Resolves at that scene second, or at once on Ctrl-C (the callers check the signal).
      const until = (second: number) =>
        sleep(Math.max(0, t0 + second * 1000 - performance.now()), undefined, { signal: context.signal }).catch(
          () => {},
        );
      try {
        events.push(`0.0 s: DNS answers ${hostsOf(inDns)}`);
        await until(scaleUpAt);
        if (!context.signal.aborted) {
          inDns = [first, second, third, fourth];
          publish();
          events.push(`${at()}: scale-up, DNS answers ${hostsOf(inDns)}`);
        }
        await until(scaleDownAt);
        if (!context.signal.aborted) {
          inDns = [second, third, fourth];
          publish();
          events.push(`${at()}: scale-down, DNS answers ${hostsOf(inDns)}`);
        }
        await until(scaleDownAt + stopAfterS);
        if (!context.signal.aborted) {
          events.push(`${at()}: ${first.host} stops (graceful: GOAWAY, in-flight calls finish)`);
          state.removed = first;
          await first.process.stop();
        }
        await until(endAt);
      } finally {
        await Promise.all([meshliteLoad, grpcJs.stop()]);
        view.stop();
      }
      return [
        ...frame(state).lines.slice(0, -events.length - 1),
        ...clients.map((c) => summary(c, state)),
        "  grpc-js looks DNS up again only when a connection breaks, and then at most every 30 s",
        "  (grpc.dns_min_time_between_resolutions_ms): a scale-up breaks nothing, so it never sees one.",
      ];
    } finally {
      process.off("exit", killGrpcJs);
      grpcJs?.kill();
      // Before the backends go: a channel that sees them vanish would try to reconnect (and say so).
      await channel?.close();
      await Promise.all(backends.map((b) => b.process.stop()));
      await dns.close();
    }
  },
};

/** Backends of one DNS name share a port: the first picks one, the others take it (another try if it is taken). */
async function startSamePort(context: DemoContext, hosts: readonly string[]): Promise<DemoBackend[]> {
  for (let attempt = 1; ; attempt++) {
    const started: DemoBackend[] = [];
    try {
      const first = await context.startBackend(hosts[0] as string);
      started.push(first);
      const port = Number(first.address.split(":").at(-1));
      started.push(...(await Promise.all(hosts.slice(1).map((h) => context.startBackend(h, { port })))));
      return started;
    } catch (error) {
      await Promise.all(started.map((b) => b.process.stop()));
      if (attempt >= 3) throw error;
    }
  }
}

interface View {
  dns: DnsServer;
  name: string;
  backends: DemoBackend[];
  inDns(): DemoBackend[];
  clients: Client[];
  events: string[];
  now(): number;
  removed: DemoBackend | undefined;
}

const hostsOf = (backends: readonly DemoBackend[]) => backends.map((b) => b.host).join(", ");

/** Share of a second's calls that went to the scale-up's backends: each one's, or (`sum`) all together. */
function newShare(view: View, second: Map<string, number> | undefined, sum = false): number {
  if (!second) return Number.NaN;
  const total = [...second.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return Number.NaN;
  const shares = view.backends.slice(2).map((b) => (second.get(b.address) ?? 0) / total);
  return sum ? shares.reduce((a, b) => a + b, 0) : Math.max(...shares);
}

/** Seconds from the scale-up to the end of the first second in which a new backend had its share. */
function secondsToShare(view: View, c: Client): number | undefined {
  for (let s = scaleUpAt; s < c.seconds.length; s++) {
    if (newShare(view, c.seconds[s]) >= shareThreshold) return s + 1 - scaleUpAt;
  }
  return undefined;
}

function summary(c: Client, view: View): string {
  const took = secondsToShare(view, c);
  const share =
    took === undefined
      ? `no new backend reached ${shareThreshold * 100}% of calls in ${endAt - scaleUpAt} s`
      : `a new backend served ${shareThreshold * 100}%+ of calls within ${took} s of the scale-up`;
  // The new backends' part of the last seconds, when the set has settled.
  const tail = new Map<string, number>();
  for (const second of c.seconds.slice(endAt - 4, endAt)) {
    for (const [server, n] of second ?? []) tail.set(server, (tail.get(server) ?? 0) + n);
  }
  const settled = Math.round(100 * newShare(view, tail, true));
  const failed = c.record.errors === 0 ? "" : ` (first: ${c.record.firstError})`;
  return (
    `  ${c.label}: ${share}, ${Number.isNaN(settled) ? "-" : settled}% on new backends in the last 4 s; ` +
    `failed calls: ${c.record.errors} of ${c.record.total() + c.record.errors}${failed}.`
  );
}

function frame(view: View) {
  const t = Math.max(0, view.now());
  // The last complete second (the current one is still filling up).
  const last = Math.max(0, Math.floor(t) - 1);
  const columns = view.backends.map((b) =>
    b === view.removed ? `${b.host} gone` : view.inDns().includes(b) ? b.host : `${b.host} -`,
  );
  const rows = view.clients.map((c) => {
    const second = c.seconds[last] ?? new Map<string, number>();
    const total = [...second.values()].reduce((a, b) => a + b, 0);
    return [
      c.label,
      ...view.backends.map((b) => (total > 0 ? shareCell((second.get(b.address) ?? 0) / total) : "")),
      String(total),
      String(c.record.errors),
    ];
  });
  const strip = view.clients.map((c) => {
    const cells: string[] = [];
    for (let s = scaleUpAt; s < Math.min(c.seconds.length, Math.floor(t)); s++) {
      const share = newShare(view, c.seconds[s], true);
      cells.push((Number.isFinite(share) ? `${Math.round(share * 100)}%` : "-").padStart(4));
    }
    return `  ${c.label.padEnd(20)}${cells.join("")}`;
  });
  const lines = [
    `  t = ${Math.floor(t)} s   DNS ${view.name} (${view.dns.address}): ${hostsOf(view.inDns())}`,
    ...formatTable([`second ${last}-${last + 1}`, ...columns, "calls", "failed"], rows),
    "",
    `  share of the new backends (${hostsOf(view.backends.slice(2))}), second by second since the scale-up:`,
    ...strip,
    "",
    ...view.events.map((e) => `  ${e}`),
  ];
  const status = view.clients
    .map((c) => {
      const second = c.seconds[last] ?? new Map<string, number>();
      const total = [...second.values()].reduce((a, b) => a + b, 0);
      const shares = view.backends
        .filter((b) => (second.get(b.address) ?? 0) > 0)
        .map((b) => `${b.host} ${Math.round((100 * (second.get(b.address) ?? 0)) / Math.max(1, total))}%`);
      return `${c.label}: ${shares.join(" ") || "-"}`;
    })
    .join(" | ");
  return { lines, status: `t=${Math.floor(t)} s ${status}` };
}
