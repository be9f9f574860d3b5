import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import "@meshlite/resolver-k8s";
import { createChannel } from "meshlite";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import type { EchoBackend } from "./support/echo-backend.js";
import { type EndpointInput, type FakeKubeApiServer, startFakeKubeApiServer } from "./support/fake-kube-apiserver.js";
import { startLoad } from "./support/load.js";
import { type SamePortBackends, startSamePortBackends } from "./support/same-port-backends.js";
import { waitFor } from "./support/wait-for.js";

// Pods on 127.0.0.141..., all listening on the same port, like pods of a Deployment.
let api: FakeKubeApiServer;
let kubeconfigPath: string;
let port = 0;
let groups: SamePortBackends[] = [];
let namespaceCounter = 0;

beforeAll(async () => {
  api = await startFakeKubeApiServer();
  api.bookmarkIntervalMs = 200;
  kubeconfigPath = api.writeKubeconfig();
});
afterEach(async () => {
  await Promise.all(groups.map((group) => group.closeAll()));
  groups = [];
});
afterAll(async () => {
  await api.close();
});

/** Starts pods on 127.0.0.N (one N each) on one port, which the test's slices then name. */
async function startPods(...ns: number[]): Promise<EchoBackend[]> {
  const group = await startSamePortBackends(
    ns.map((n) => `127.0.0.${n}`),
    { delayMs: 20 },
  );
  groups.push(group);
  port = group.port;
  return [...group.all];
}

function ep(backend: EchoBackend, conditions: Omit<EndpointInput, "ip"> = {}): EndpointInput {
  return { ip: backend.host, ...conditions };
}

function applySlice(ns: string, name: string, endpoints: EndpointInput[]): void {
  api.applySlice(ns, { name, service: "echo", endpoints, ports: [{ name: "grpc", port }] });
}

function open(ns: string) {
  let stillFailing = 0;
  const channel = createChannel({
    target: `k8s:///echo.${ns}:grpc`,
    balancer: "round-robin",
    logger: {
      ...silentLogger,
      debug(message) {
        if (message.includes("still failing")) stillFailing++;
      },
    },
    resolverOptions: { kubeconfigPath, watchIdleTimeoutMs: 800, reconnectInitialMs: 100, reconnectMaxMs: 500 },
  });
  const client = createClient(EchoService, channel);
  const load = startLoad(() => client.echo({ message: "x" }), { concurrency: 4, intervalMs: 5 });
  const activeAddresses = () =>
    channel
      .snapshot()
      .endpoints.filter((e) => !e.draining)
      .map((e) => e.address)
      .sort();
  const addresses = () => channel.snapshot().endpoints.map((e) => e.address);
  /** Failed reconnection attempts after the first (the resolver logs those at debug level). */
  const failedRetries = () => stillFailing;
  return { channel, client, load, activeAddresses, addresses, failedRetries };
}

/** Milliseconds from `change` until `condition` holds. */
async function timeUntil(what: string, change: () => void, condition: () => boolean): Promise<number> {
  const start = performance.now();
  change();
  await waitFor(what, condition, { intervalMs: 10 });
  return performance.now() - start;
}

describe("k8s targets in a channel, under steady call load", () => {
  it("serves a new ready endpoint within 1 s, stops new calls to a not-ready one within 1 s, drains a terminating one", async () => {
    const ns = `chan-${++namespaceCounter}`;
    const [a, b, c] = (await startPods(141, 142, 143)) as [EchoBackend, EchoBackend, EchoBackend];
    applySlice(ns, "echo-1", [ep(a), ep(b)]);
    const { channel, load, activeAddresses, addresses } = open(ns);
    try {
      await waitFor("calls on a and b", () => a.totalCalls() > 5 && b.totalCalls() > 5);

      const toServe = await timeUntil(
        "calls on the new endpoint c",
        () => applySlice(ns, "echo-1", [ep(a), ep(b), ep(c)]),
        () => c.totalCalls() > 0,
      );
      expect(toServe).toBeLessThan(1000);

      const toStop = await timeUntil(
        "c out of rotation",
        () => applySlice(ns, "echo-1", [ep(a), ep(b), ep(c, { ready: false })]),
        () => !activeAddresses().includes(c.address),
      );
      expect(toStop).toBeLessThan(1000);
      // Once its connection is closed (drained), nothing more can reach c.
      await waitFor("c's connection to close", () => !addresses().includes(c.address));
      const onC = c.totalCalls();
      load.mark();
      await waitFor("40 more calls", () => [...load.since().values()].reduce((x, y) => x + y, 0) >= 40);
      expect(c.totalCalls()).toBe(onC);

      // b terminates while serving: it finishes its calls and takes no new ones.
      b.setDelay(150);
      await waitFor("calls in flight on b", () => b.inFlight() > 0);
      applySlice(ns, "echo-1", [ep(a), ep(b, { ready: false, serving: true, terminating: true })]);
      await waitFor("b out of rotation", () => !activeAddresses().includes(b.address));
      await waitFor("b drained and its connection closed", () => !addresses().includes(b.address));
      expect(b.inFlight()).toBe(0);
      const onB = b.totalCalls();
      load.mark();
      await waitFor("40 more calls", () => [...load.since().values()].reduce((x, y) => x + y, 0) >= 40);
      expect(b.totalCalls()).toBe(onB);
      expect([...load.since().keys()]).toEqual([a.address]);

      const result = await load.stop();
      expect(result.errors).toEqual([]);
      expect(result.failed).toBe(0);
    } finally {
      await load.stop();
      await channel.close();
    }
  });

  it("merges two slices of the service; deleting one removes only its endpoints", async () => {
    const ns = `chan-${++namespaceCounter}`;
    const [a, b, c] = (await startPods(144, 145, 146)) as [EchoBackend, EchoBackend, EchoBackend];
    applySlice(ns, "echo-1", [ep(a), ep(b)]);
    applySlice(ns, "echo-2", [ep(c)]);
    const { channel, load, activeAddresses, addresses } = open(ns);
    try {
      await waitFor("calls on a, b and c", () => a.totalCalls() > 5 && b.totalCalls() > 5 && c.totalCalls() > 5);
      expect(activeAddresses()).toEqual([a.address, b.address, c.address].sort());
      api.deleteSlice(ns, "echo-2");
      await waitFor("c out of rotation", () => !activeAddresses().includes(c.address));
      expect(activeAddresses()).toEqual([a.address, b.address].sort());
      await waitFor("c's connection to close", () => !addresses().includes(c.address));
      load.mark();
      await waitFor(
        "calls on a and b",
        () => (load.since().get(a.address) ?? 0) > 10 && (load.since().get(b.address) ?? 0) > 10,
      );
      expect(load.since().has(c.address)).toBe(false);
      const result = await load.stop();
      expect(result.errors).toEqual([]);
      expect(result.failed).toBe(0);
    } finally {
      await load.stop();
      await channel.close();
    }
  });

  it("recovers from 410, a dropped connection, a stall and a restart with no lost update and no failed call", async () => {
    const ns = `chan-${++namespaceCounter}`;
    const pods = await startPods(151, 152, 153, 154, 155, 156);
    const [a, b, c, d, e, f] = pods as [EchoBackend, EchoBackend, EchoBackend, EchoBackend, EchoBackend, EchoBackend];
    applySlice(ns, "echo-1", [ep(a), ep(b)]);
    const { channel, load, activeAddresses, failedRetries } = open(ns);
    const lists = () => api.requests.filter((r) => r.namespace === ns && r.kind === "list").length;
    const watching = () => waitFor("a watch", () => api.activeWatches() > 0);
    try {
      await waitFor("calls on a and b", () => a.totalCalls() > 5 && b.totalCalls() > 5);
      await watching();

      // The watch connection drops and c arrives meanwhile.
      api.dropWatches();
      applySlice(ns, "echo-1", [ep(a), ep(b), ep(c)]);
      await waitFor("calls on c after the drop", () => c.totalCalls() > 5);
      expect(lists()).toBe(1);
      await watching();

      // The history is compacted while a change (a leaves) is pending: 410, relist.
      api.dropWatches();
      applySlice(ns, "echo-1", [ep(b), ep(c)]);
      api.compact();
      await waitFor("a out of rotation after the 410", () => !activeAddresses().includes(a.address));
      expect(lists()).toBe(2);
      await watching();

      // The watch stalls without closing and d arrives meanwhile: the idle timeout restarts it.
      api.stallWatches();
      applySlice(ns, "echo-1", [ep(b), ep(c), ep(d)]);
      await waitFor("calls on d after the stall", () => d.totalCalls() > 5);
      await watching();

      // The API server restarts; e arrives and b leaves while it is down.
      await api.stop();
      applySlice(ns, "echo-1", [ep(c), ep(d), ep(e)]);
      await waitFor("a few failed reconnection attempts", () => failedRetries() >= 2);
      expect(activeAddresses()).toContain(b.address); // the last good set stays in force
      await api.start();
      await waitFor("calls on e after the restart", () => e.totalCalls() > 5);
      await waitFor("b out of rotation after the restart", () => !activeAddresses().includes(b.address));

      // Still following: f arrives.
      applySlice(ns, "echo-1", [ep(c), ep(d), ep(e), ep(f)]);
      await waitFor("calls on f", () => f.totalCalls() > 5);
      expect(activeAddresses()).toEqual([c.address, d.address, e.address, f.address].sort());

      const result = await load.stop();
      expect(result.errors).toEqual([]);
      expect(result.failed).toBe(0);
    } finally {
      await api.start().catch(() => {});
      await load.stop();
      await channel.close();
    }
  });

  it("fails calls with the RBAC message on 403", async () => {
    const ns = `chan-${++namespaceCounter}`;
    const [a] = (await startPods(147)) as [EchoBackend];
    applySlice(ns, "echo-1", [ep(a)]);
    api.forbid(true);
    const channel = createChannel({
      target: `k8s:///echo.${ns}:grpc`,
      logger: silentLogger,
      resolverOptions: { kubeconfigPath, reconnectInitialMs: 100 },
    });
    try {
      const client = createClient(EchoService, channel);
      const error = await client.echo({ message: "x" }, { timeoutMs: 1500 }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect(error).toBeDefined();
      expect([Code.Unavailable, Code.DeadlineExceeded]).toContain(error?.code);
      const lastError = channel.snapshot().lastError ?? "";
      expect(lastError).toContain("get, list and watch on endpointslices.discovery.k8s.io");
      expect(lastError).toContain(`in namespace "${ns}"`);
      api.forbid(false);
      const response = await client.echo({ message: "x" }, { timeoutMs: 5000 });
      expect(response.server).toBe(a.address);
    } finally {
      api.forbid(false);
      await channel.close();
    }
  });
});
