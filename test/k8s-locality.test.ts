import { createClient } from "@connectrpc/connect";
import { type Logger, silentLogger } from "@meshlite/core";
import "@meshlite/resolver-k8s";
import { type ChannelOptions, createChannel } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import type { EchoBackend } from "./support/echo-backend.js";
import { type EndpointInput, type FakeKubeApiServer, startFakeKubeApiServer } from "./support/fake-kube-apiserver.js";
import { type SamePortBackends, startSamePortBackends } from "./support/same-port-backends.js";
import { shareOf, startTimedLoad } from "./support/timed-load.js";
import { waitFor } from "./support/wait-for.js";

// Pods of one Deployment on 127.0.0.191-196, two per zone: a, a, b, b, c, c.
let api: FakeKubeApiServer;
let kubeconfigPath: string;
let group: SamePortBackends;
let pods: EchoBackend[];
let namespaceCounter = 0;
const zones = ["a", "a", "b", "b", "c", "c"];

beforeAll(async () => {
  delete process.env.MESHLITE_ZONE;
  delete process.env.NODE_NAME;
  api = await startFakeKubeApiServer();
  api.bookmarkIntervalMs = 200;
  kubeconfigPath = api.writeKubeconfig();
  group = await startSamePortBackends([191, 192, 193, 194, 195, 196].map((n) => `127.0.0.${n}`));
  pods = group.all;
});
afterAll(async () => {
  await group.closeAll();
  await api.close();
});

const inZone = (zone: string) => pods.filter((_, i) => zones[i] === zone).map((p) => p.address);

/** The service's slice: every pod with its zone and node, and hints as `hintFor` says (none when it returns undefined). */
function applySlice(ns: string, hintFor: (zone: string) => string | undefined = () => undefined) {
  const endpoints: EndpointInput[] = pods.map((p, i) => {
    const zone = zones[i] as string;
    const hint = hintFor(zone);
    return { ip: p.host, zone, nodeName: `node-${i}`, ...(hint ? { hints: { forZones: [hint] } } : {}) };
  });
  api.applySlice(ns, { name: "echo-1", service: "echo", endpoints, ports: [{ name: "grpc", port: group.port }] });
}

function open(ns: string, options: Partial<ChannelOptions> = {}) {
  const infos: string[] = [];
  const logger: Logger = { ...silentLogger, info: (m) => infos.push(m) };
  const channel = createChannel({
    target: `k8s:///echo.${ns}:grpc`,
    logger,
    resolverOptions: { kubeconfigPath, reconnectInitialMs: 100 },
    ...options,
  });
  const client = createClient(EchoService, channel);
  const load = startTimedLoad(() => client.echo({ message: "x" }, { timeoutMs: 5000 }), { concurrency: 4 });
  return { channel, load, infos };
}

async function windowOf(load: ReturnType<typeof startTimedLoad>, ms: number) {
  load.mark();
  await new Promise((r) => setTimeout(r, ms));
  return load.window();
}

describe("zone-aware routing with k8s targets", () => {
  it("follows EndpointSlice hints: its own zone, then zone b when the hints send zone a's traffic there", async () => {
    const ns = `loc-${++namespaceCounter}`;
    applySlice(ns, (zone) => zone);
    const { channel, load } = open(ns, { locality: { zone: "a" } });
    try {
      await waitFor("preferring", () => channel.snapshot().locality?.state === "preferring");
      expect(shareOf(await windowOf(load, 1500), inZone("a"))).toBeGreaterThanOrEqual(0.95);
      expect(channel.snapshot().locality).toMatchObject({ prefer: "hints", reason: 'preferring hints for zone "a"' });

      // The controller moves zone a's share to zone b (a has too little capacity, say).
      applySlice(ns, (zone) => ({ a: "b", b: "a" })[zone] ?? zone);
      await waitFor("calls in zone b", () => (load.window().byServer.get(inZone("b")[0] as string) ?? 0) > 20);
      expect(shareOf(await windowOf(load, 1500), inZone("b"))).toBeGreaterThanOrEqual(0.95);
      expect((await load.stop()).errors).toEqual([]);
    } finally {
      await load.stop();
      await channel.close();
    }
  });

  it("follows the Service's trafficDistribution where slices carry no hints, with the client's zone from its Node", async () => {
    const ns = `loc-${++namespaceCounter}`;
    applySlice(ns);
    api.applyService(ns, { name: "echo", trafficDistribution: "PreferClose" });
    api.applyNode({ name: "client-node", labels: { "topology.kubernetes.io/zone": "c" } });
    const { channel, load } = open(ns, { locality: { node: "client-node" } });
    try {
      await waitFor("preferring", () => channel.snapshot().locality?.state === "preferring");
      expect(channel.snapshot().locality).toMatchObject({ zone: "c", zoneSource: "node label", node: "client-node" });
      expect(shareOf(await windowOf(load, 1500), inZone("c"))).toBeGreaterThanOrEqual(0.95);
    } finally {
      await load.stop();
      await channel.close();
    }
  });

  it("without get services and get nodes still balances every call, and says why once", async () => {
    const ns = `loc-${++namespaceCounter}`;
    applySlice(ns);
    api.applyService(ns, { name: "echo", trafficDistribution: "PreferClose" });
    api.applyNode({ name: "client-node", labels: { "topology.kubernetes.io/zone": "a" } });
    api.forbidResource("services", true);
    api.forbidResource("nodes", true);
    const { channel, load, infos } = open(ns, { locality: { node: "client-node" } });
    try {
      await waitFor("calls", () => load.total().latencies.length > 50);
      const window = await windowOf(load, 1500);
      for (const pod of pods) expect(window.byServer.get(pod.address) ?? 0).toBeGreaterThan(0);
      expect(channel.snapshot().locality?.state).toBe("off");
      const services = infos.filter((m) => m.includes("cannot read the Service"));
      const nodes = infos.filter((m) => m.includes('cannot read node "client-node"'));
      expect(services).toHaveLength(1);
      expect(services[0]).toContain("grant the verb get on services");
      expect(nodes).toHaveLength(1);
      expect(nodes[0]).toContain("grant the verb get on nodes (a ClusterRole");
      expect((await load.stop()).failed).toBe(0);
    } finally {
      api.forbidResource("services", false);
      api.forbidResource("nodes", false);
      await load.stop();
      await channel.close();
    }
  });
});
