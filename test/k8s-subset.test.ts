// Subsetting on Kubernetes (issue 15): the channel watches its own Service's
// EndpointSlices (the faithful list/watch server) to find its rank among its
// peers by its own pod IP, and follows them live; the subset's calls keep
// going while its rank changes.
import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { ringOrder } from "@meshlite/pool";
import "@meshlite/resolver-k8s";
import { type Channel, createChannel } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type BackendProcess, startBackendGroup } from "./support/backend-process.js";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "./support/fake-kube-apiserver.js";
import { startLoad } from "./support/load.js";
import { waitFor } from "./support/wait-for.js";

let api: FakeKubeApiServer;
let kubeconfigPath: string;
let backends: BackendProcess[] = [];
beforeAll(async () => {
  api = await startFakeKubeApiServer();
  api.bookmarkIntervalMs = 200;
  kubeconfigPath = api.writeKubeconfig();
  backends = await startBackendGroup(Array.from({ length: 24 }, (_, i) => `127.0.71.${i + 10}`));
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.kill()));
  await api.close();
});

const self = "10.9.0.5";
const peer = (n: number) => `10.9.0.${n}`;

/** The rank the client should have among `hosts` (itself included): the ring order every peer computes. */
function expectedRank(hosts: string[]): { rank: number; count: number } {
  const all = hosts.includes(self) ? hosts : [...hosts, self];
  return { rank: ringOrder(all).indexOf(all.indexOf(self)), count: all.length };
}

describe("subset with peers from the client's own Service (k8s)", () => {
  it("takes its rank among the Service's endpoints by its pod IP and follows peers added and removed", async () => {
    const ns = "subset-peers";
    const setPeers = (ns_: string, hosts: string[]) =>
      api.applySlice(ns_, {
        name: "checkout-abc",
        service: "checkout",
        endpoints: hosts.map((ip) => ({ ip })),
        ports: [{ name: "http", port: 8080 }],
      });
    let peers = [1, 3, 5, 7].map(peer);
    setPeers(ns, peers);
    const channel: Channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      subset: {
        size: 6,
        minEndpoints: 0,
        peers: `k8s:///checkout.${ns}:http`,
        selfAddress: self,
        peersResolverOptions: { kubeconfigPath, watchIdleTimeoutMs: 800, reconnectInitialMs: 100 },
      },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    const load = startLoad(() => client.echoIdempotent({ message: "x" }, { timeoutMs: 10_000 }), {
      concurrency: 2,
      intervalMs: 5,
    });
    try {
      const follows = async (what: string) => {
        const want = expectedRank(peers);
        const snap = await waitFor(what, () => {
          const s = channel.snapshot();
          const settled = s.subset?.leaving.length === 0 && s.endpoints.filter((e) => e.connections > 0).length <= 7;
          return s.subset?.mode === "aperture" &&
            s.subset.rank === want.rank &&
            s.subset.count === want.count &&
            settled
            ? s
            : undefined;
        });
        expect(snap.subset?.peers).toBe(`k8s:///checkout.${ns}:http`);
        const members = new Set(snap.subset?.members.map((m) => m.address));
        for (const e of snap.endpoints) if (!members.has(e.address)) expect(e.connections).toBe(0);
        return { ...want, members: [...members].sort() };
      };
      const first = await follows("rank among 4 peers");
      expect(first.count).toBe(4);

      // The Deployment scales up: new peers, a new rank, another slice of the servers.
      peers = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23].map(peer);
      setPeers(ns, peers);
      const scaled = await follows("rank among 12 peers");
      expect(scaled.count).toBe(12);
      expect(scaled.members).not.toEqual(first.members);

      // Scales down again, and the client's own pod leaves its slice (not ready): it still counts itself.
      peers = [1, 3, 7, 9, 11].map(peer);
      setPeers(ns, peers);
      const down = await follows("rank among 5 peers and itself");
      expect(down.count).toBe(6);
      expect(channel.snapshot().subset?.reason).toMatch(/not listed/);
      await waitFor("calls on the last subset", () => load.result.ok > 200);
      const result = await load.stop();
      expect(result.errors).toEqual([]);
    } finally {
      await load.stop();
      await channel.close();
    }
  });

  it("falls back to a rendezvous subset, and says why, while its own address is unknown", async () => {
    const podIp = process.env.POD_IP;
    delete process.env.POD_IP;
    const channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      subset: {
        size: 6,
        minEndpoints: 0,
        peers: "k8s:///checkout.subset-none:http",
        peersResolverOptions: { kubeconfigPath },
      },
      logger: silentLogger,
    });
    try {
      const snap = channel.snapshot();
      expect(snap.subset?.mode).toBe("rendezvous");
      expect(snap.subset?.reason).toMatch(/POD_IP/);
      expect(snap.endpoints.filter((e) => e.state !== "idle" || e.connections > 0).length).toBe(6);
    } finally {
      if (podIp !== undefined) process.env.POD_IP = podIp;
      await channel.close();
    }
  });
});
