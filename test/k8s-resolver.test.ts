import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { getResolverFactory, type KubernetesTarget, parseTarget, type Resolver } from "@meshlite/core";
import { createKubernetesResolver, type KubernetesResolverOptions } from "@meshlite/resolver-k8s";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type FakeKubeApiServer, type SliceInput, startFakeKubeApiServer } from "./support/fake-kube-apiserver.js";
import { createRecorder, type Recorder } from "./support/resolver-recorder.js";

let api: FakeKubeApiServer;
let kubeconfigPath: string;
const resolvers: Resolver[] = [];
let namespaceCounter = 0;

beforeAll(async () => {
  api = await startFakeKubeApiServer();
  api.bookmarkIntervalMs = 200;
  kubeconfigPath = api.writeKubeconfig({ namespace: "from-context" });
});
afterEach(() => {
  for (const resolver of resolvers.splice(0)) resolver.close();
  api.events.removeAllListeners("change");
});

/** Wakes the recorder's waiters on every change of the API server's state. */
function follow(recorder: Recorder): void {
  api.events.on("change", recorder.wake);
}
afterAll(async () => {
  await api.close();
});

/** A fresh namespace per test keeps tests apart on the shared server. */
function freshNamespace(): string {
  return `ns-${++namespaceCounter}`;
}

function start(
  target: string,
  options: KubernetesResolverOptions = {},
): { recorder: Recorder; resolver: Resolver; target: KubernetesTarget } {
  const parsed = parseTarget(target) as KubernetesTarget;
  const recorder = createRecorder();
  const resolver = createKubernetesResolver(parsed, {
    logger: recorder.logger,
    options: { kubeconfigPath, reconnectInitialMs: 50, reconnectMaxMs: 400, ...options },
  });
  resolvers.push(resolver);
  follow(recorder);
  resolver.start(recorder.listener);
  return { recorder, resolver, target: parsed };
}

const slice = (name: string, endpoints: SliceInput["endpoints"], extra: Partial<SliceInput> = {}): SliceInput => ({
  name,
  service: "orders",
  endpoints,
  ...extra,
});

const requestsIn = (ns: string, kind: "list" | "watch") =>
  api.requests.filter((r) => r.namespace === ns && r.kind === kind);

/** Applies a change and measures the time until the resolver reports `expected`. */
async function changeAndWait(recorder: Recorder, change: () => void, expected: string[]): Promise<number> {
  const before = performance.now();
  change();
  const at = await recorder.until(
    () => JSON.stringify(recorder.current()) === JSON.stringify([...expected].sort()),
    `set ${JSON.stringify(expected)}`,
  );
  return at - before;
}

describe("k8s resolver against a fake API server", () => {
  it("registers the k8s scheme when the package is imported", () => {
    expect(getResolverFactory(parseTarget("k8s:///orders.shop:grpc"))).toBe(createKubernetesResolver);
    expect(getResolverFactory(parseTarget("kubernetes:///orders.shop:50051"))).toBe(createKubernetesResolver);
  });

  it("lists the slices, merges and de-duplicates them, and follows conditions", async () => {
    const ns = freshNamespace();
    api.applySlice(
      ns,
      slice("orders-a", [
        { ip: "10.0.0.1", zone: "zone-a", nodeName: "node-1" },
        { ip: "10.0.0.2", ready: null, serving: null }, // unset ready means ready
        { ip: "10.0.0.3", ready: false },
        { ip: "10.0.0.4", ready: false, serving: true, terminating: true },
        { ip: "10.0.0.5", ready: false, serving: false, terminating: true },
      ]),
    );
    // A second slice of the same service, repeating 10.0.0.1 (as during a slice rebalance).
    api.applySlice(ns, slice("orders-b", [{ ip: "10.0.0.6" }, { ip: "10.0.0.1", zone: "zone-a", nodeName: "node-1" }]));
    // Another service's slice in the same namespace is not listed.
    api.applySlice(ns, slice("payments-a", [{ ip: "10.0.9.9" }], { service: "payments" }));
    const { recorder } = start(`k8s:///orders.${ns}:grpc`);
    await recorder.until(() => recorder.sets.length > 0, "a first set");
    expect(recorder.current()).toEqual([
      "10.0.0.1:50051",
      "10.0.0.2:50051",
      "10.0.0.4:50051 draining",
      "10.0.0.6:50051",
    ]);
    const first = recorder.sets[0]?.endpoints.find((e) => e.host === "10.0.0.1");
    expect(first).toEqual({ host: "10.0.0.1", port: 50051, zone: "zone-a", nodeName: "node-1" });
    expect(requestsIn(ns, "list")).toHaveLength(1);
    await recorder.until(() => requestsIn(ns, "watch").length === 1, "a watch");
    expect(requestsIn(ns, "watch")[0]?.resourceVersion).toBe(api.resourceVersion());
  });

  it("reports each change within 1 s, and only changes of the merged set", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.1.1" }]));
    const { recorder } = start(`k8s:///orders.${ns}:grpc`);
    await recorder.until(() => recorder.sets.length === 1, "a first set");
    await recorder.until(() => api.activeWatches() > 0 && requestsIn(ns, "watch").length === 1, "a watch");

    const timings: number[] = [];
    // A new ready endpoint.
    timings.push(
      await changeAndWait(
        recorder,
        () => api.applySlice(ns, slice("orders-a", [{ ip: "10.0.1.1" }, { ip: "10.0.1.2" }])),
        ["10.0.1.1:50051", "10.0.1.2:50051"],
      ),
    );
    // It turns not ready: no new calls.
    timings.push(
      await changeAndWait(
        recorder,
        () => api.applySlice(ns, slice("orders-a", [{ ip: "10.0.1.1" }, { ip: "10.0.1.2", ready: false }])),
        ["10.0.1.1:50051"],
      ),
    );
    // Back to ready, then terminating but serving: draining.
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.1.1" }, { ip: "10.0.1.2" }]));
    timings.push(
      await changeAndWait(
        recorder,
        () =>
          api.applySlice(
            ns,
            slice("orders-a", [{ ip: "10.0.1.1" }, { ip: "10.0.1.2", ready: false, serving: true, terminating: true }]),
          ),
        ["10.0.1.1:50051", "10.0.1.2:50051 draining"],
      ),
    );
    // A second slice appears; then the first one is deleted: only its endpoints go.
    timings.push(
      await changeAndWait(
        recorder,
        () => api.applySlice(ns, slice("orders-b", [{ ip: "10.0.1.3" }, { ip: "10.0.1.4" }])),
        ["10.0.1.1:50051", "10.0.1.2:50051 draining", "10.0.1.3:50051", "10.0.1.4:50051"],
      ),
    );
    timings.push(
      await changeAndWait(recorder, () => api.deleteSlice(ns, "orders-a"), ["10.0.1.3:50051", "10.0.1.4:50051"]),
    );
    for (const ms of timings) {
      expect(ms).toBeLessThan(1000);
    }

    // Changes that leave the merged set as it is are not reported: a label, and a
    // duplicate of an existing endpoint in another slice.
    const reports = recorder.sets.length;
    api.applySlice(ns, slice("orders-b", [{ ip: "10.0.1.3" }, { ip: "10.0.1.4" }], { labels: { team: "x" } }));
    api.applySlice(ns, slice("orders-c", [{ ip: "10.0.1.3" }]));
    await changeAndWait(recorder, () => api.applySlice(ns, slice("orders-d", [{ ip: "10.0.1.5" }])), [
      "10.0.1.3:50051",
      "10.0.1.4:50051",
      "10.0.1.5:50051",
    ]);
    expect(recorder.sets.length).toBe(reports + 1);
    // A slice that stops carrying the service label leaves the set (the API server sends DELETED).
    await changeAndWait(
      recorder,
      () =>
        api.applySlice(ns, slice("orders-d", [{ ip: "10.0.1.5" }], { labels: { "kubernetes.io/service-name": "x" } })),
      ["10.0.1.3:50051", "10.0.1.4:50051"],
    );
    expect(requestsIn(ns, "list")).toHaveLength(1);
  });

  it("follows a service of 250 endpoints spread over three slices, as the controller moves endpoints between them", async () => {
    const ns = freshNamespace();
    const ips = Array.from({ length: 250 }, (_, i) => `10.2.${Math.floor(i / 200)}.${(i % 200) + 1}`);
    const chunk = (from: number, to: number) => ips.slice(from, to).map((ip) => ({ ip }));
    api.applySlice(ns, slice("orders-a", chunk(0, 100)));
    api.applySlice(ns, slice("orders-b", chunk(100, 200)));
    api.applySlice(ns, slice("orders-c", chunk(200, 250)));
    const { recorder } = start(`k8s:///orders.${ns}:grpc`);
    await recorder.until(() => recorder.sets.length === 1, "a first set");
    expect(recorder.sets[0]?.endpoints).toHaveLength(250);
    await recorder.until(() => api.activeWatches() > 0 && requestsIn(ns, "watch").length === 1, "a watch");

    // The controller moves the last 10 endpoints of orders-a into orders-c: first added there, then removed
    // from orders-a. The merged set does not change, so nothing is reported.
    api.applySlice(ns, slice("orders-c", chunk(90, 100).concat(chunk(200, 250))));
    api.applySlice(ns, slice("orders-a", chunk(0, 90)));
    // One real change after them shows they were all processed.
    const elapsed = await changeAndWait(
      recorder,
      () => api.applySlice(ns, slice("orders-b", chunk(100, 199))),
      ips.filter((ip) => ip !== ips[199]).map((ip) => `${ip}:50051`),
    );
    expect(elapsed).toBeLessThan(1000);
    expect(recorder.sets).toHaveLength(2);
  });

  it("resolves the port by name or by number in each slice", async () => {
    const ns = freshNamespace();
    // During a rollout two slices can map the same port name to different pod ports.
    api.applySlice(
      ns,
      slice("orders-a", [{ ip: "10.0.2.1" }], {
        ports: [
          { name: "grpc", port: 50051 },
          { name: "metrics", port: 9090 },
        ],
      }),
    );
    api.applySlice(ns, slice("orders-b", [{ ip: "10.0.2.2" }], { ports: [{ name: "grpc", port: 50052 }] }));
    const byName = start(`k8s:///orders.${ns}:grpc`).recorder;
    const byNumber = start(`kubernetes:///orders.${ns}:9090`).recorder;
    const missing = start(`k8s:///orders.${ns}:http`).recorder;
    await byName.until(() => byName.sets.length > 0, "a set by name");
    await byNumber.until(() => byNumber.sets.length > 0, "a set by number");
    await missing.until(() => missing.sets.length > 0, "a set for a missing port");
    expect(byName.current()).toEqual(["10.0.2.1:50051", "10.0.2.2:50052"]);
    expect(byNumber.current()).toEqual(["10.0.2.1:9090"]);
    expect(
      byNumber.logged("warn", "EndpointSlice orders-b is skipped: it has no TCP port 9090 (ports: grpc=50052)"),
    ).toBe(1);
    expect(missing.current()).toEqual([]);
    expect(missing.logged("warn", 'no TCP port named "http"')).toBe(2);
  });

  it("defaults the namespace to the kubeconfig context's", async () => {
    api.applySlice("from-context", slice("orders-a", [{ ip: "10.0.3.1" }]));
    const { recorder } = start("k8s:///orders:grpc");
    await recorder.until(() => recorder.sets.length > 0, "a first set");
    expect(recorder.current()).toEqual(["10.0.3.1:50051"]);
    expect(requestsIn("from-context", "list")).toHaveLength(1);
  });

  it("relists on 410 Gone (ERROR event or HTTP status) and loses no update", async () => {
    for (const goneAs of ["event", "status"] as const) {
      api.goneAs = goneAs;
      const ns = freshNamespace();
      api.applySlice(ns, slice("orders-a", [{ ip: "10.0.4.1" }]));
      const { recorder } = start(`k8s:///orders.${ns}:grpc`);
      await recorder.until(() => api.activeWatches() > 0 && requestsIn(ns, "watch").length === 1, "a watch");
      // The connection breaks, a change happens, and the history is compacted before the client is back.
      api.dropWatches();
      api.applySlice(ns, slice("orders-a", [{ ip: "10.0.4.1" }, { ip: "10.0.4.2" }]));
      api.compact();
      await recorder.until(() => recorder.current().length === 2, `the update after 410 (${goneAs})`);
      expect(recorder.current()).toEqual(["10.0.4.1:50051", "10.0.4.2:50051"]);
      expect(requestsIn(ns, "list")).toHaveLength(2);
      expect(recorder.logged("info", "(410 Gone); listing EndpointSlices again")).toBe(1);
      expect(recorder.errors).toEqual([]);
    }
    api.goneAs = "event";

    // 410 on a live watch (the watch cache fell behind): relist, then keep following.
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.4.1" }]));
    const { recorder } = start(`k8s:///orders.${ns}:grpc`);
    await recorder.until(() => api.activeWatches() > 0 && requestsIn(ns, "watch").length === 1, "a watch");
    api.expireWatches();
    await recorder.until(() => requestsIn(ns, "watch").length === 2, "a new watch after the relist");
    expect(requestsIn(ns, "list")).toHaveLength(2);
    await changeAndWait(recorder, () => api.applySlice(ns, slice("orders-a", [{ ip: "10.0.4.3" }])), [
      "10.0.4.3:50051",
    ]);
  });

  it("resumes a dropped watch from its resourceVersion without relisting", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.5.1" }]));
    const { recorder } = start(`k8s:///orders.${ns}:grpc`);
    await recorder.until(() => api.activeWatches() > 0 && requestsIn(ns, "watch").length === 1, "a watch");
    const version = api.resourceVersion();
    api.dropWatches();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.5.1" }, { ip: "10.0.5.2" }]));
    await recorder.until(() => recorder.current().length === 2, "the update made while disconnected");
    expect(requestsIn(ns, "list")).toHaveLength(1);
    expect(requestsIn(ns, "watch")[1]?.resourceVersion).toBe(version);
    expect(recorder.errors).toEqual([]);
  });

  it("resumes quietly when the API server ends a watch at its timeout", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.5.5" }]));
    api.maxWatchMs = 300;
    try {
      const { recorder } = start(`k8s:///orders.${ns}:grpc`);
      await recorder.until(() => requestsIn(ns, "watch").length >= 3, "three watches in turn");
      api.applySlice(ns, slice("orders-a", [{ ip: "10.0.5.6" }]));
      await recorder.until(() => recorder.current()[0] === "10.0.5.6:50051", "the update");
      await recorder.until(() => requestsIn(ns, "watch").length >= 5, "two more watches");
      expect(requestsIn(ns, "list")).toHaveLength(1);
      // A routine end of a watch is not worth a warning.
      expect(recorder.logs.filter((l) => l.level !== "debug")).toEqual([]);
      expect(recorder.logged("debug", "the API server ended the watch")).toBeGreaterThanOrEqual(4);
    } finally {
      api.maxWatchMs = undefined;
    }
  });

  it("pauses before watching again when the API server ends every watch at once", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.5.7" }]));
    api.maxWatchMs = 0;
    try {
      const { recorder } = start(`k8s:///orders.${ns}:grpc`, { reconnectInitialMs: 400 });
      await recorder.until(() => requestsIn(ns, "watch").length >= 1, "a first watch");
      // Intentional: a rate is measured over a span of time.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(requestsIn(ns, "watch").length).toBeLessThanOrEqual(5);
      expect(recorder.current()).toEqual(["10.0.5.7:50051"]);
    } finally {
      api.maxWatchMs = undefined;
    }
  });

  it("survives a slice too malformed to read, and lists again once it is fixed", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.5.8" }]));
    const { recorder } = start(`k8s:///orders.${ns}:grpc`);
    await recorder.until(() => api.activeWatches() > 0 && recorder.sets.length === 1, "a watch and the first set");
    api.applySlice(ns, slice("orders-b", [{ ip: "10.0.5.9" }], { raw: { ports: 5 } }));
    await recorder.until(() => recorder.errors.length > 0, "the malformed slice reported");
    expect(recorder.errors[0]?.message).toMatch(/cannot read the EndpointSlices .*keeping the last 1 endpoints/);
    expect(recorder.current()).toEqual(["10.0.5.8:50051"]);
    api.applySlice(ns, slice("orders-b", [{ ip: "10.0.5.9" }]));
    await recorder.until(() => recorder.current().length === 2, "the set once the slice is fixed");
    expect(recorder.current()).toEqual(["10.0.5.8:50051", "10.0.5.9:50051"]);
    expect(requestsIn(ns, "list").length).toBeGreaterThanOrEqual(2);
    expect(recorder.logged("info", "answers again")).toBe(1);
  });

  it("restarts a watch that stalls, and not a quiet one that gets bookmarks", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.6.1" }]));
    const { recorder } = start(`k8s:///orders.${ns}:grpc`, { watchIdleTimeoutMs: 600 });
    await recorder.until(() => api.activeWatches() > 0 && requestsIn(ns, "watch").length === 1, "a watch");
    // Quiet for three idle periods: bookmarks (every 200 ms) keep the watch alive.
    await new Promise((resolve) => setTimeout(resolve, 1800));
    expect(requestsIn(ns, "watch")).toHaveLength(1);
    expect(recorder.logged("warn", "delivered nothing")).toBe(0);

    const stalledAt = performance.now();
    api.stallWatches();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.6.1" }, { ip: "10.0.6.2" }]));
    const seenAt = await recorder.until(() => recorder.current().length === 2, "the update after the stall");
    expect(seenAt - stalledAt).toBeGreaterThanOrEqual(400); // not before the idle timeout
    expect(seenAt - stalledAt).toBeLessThan(3000);
    expect(recorder.logged("warn", "delivered nothing, not even a bookmark, for 600 ms")).toBe(1);
    expect(requestsIn(ns, "list")).toHaveLength(1);
    expect(recorder.errors).toEqual([]);

    // A server that sends no bookmarks: every quiet watch is restarted, but that is said once.
    const bookmarkInterval = api.bookmarkIntervalMs;
    api.bookmarkIntervalMs = 60_000;
    try {
      api.dropWatches(); // the next watch gets no bookmarks
      const restartsBefore = requestsIn(ns, "watch").length;
      await recorder.until(() => requestsIn(ns, "watch").length >= restartsBefore + 4, "three silent restarts");
      expect(recorder.logged("warn", "delivered nothing")).toBe(2);
      expect(recorder.logged("debug", "delivered nothing")).toBeGreaterThanOrEqual(1);
    } finally {
      api.bookmarkIntervalMs = bookmarkInterval;
    }
  });

  it("keeps the last set while the API server restarts, and catches up", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.7.1" }, { ip: "10.0.7.2" }]));
    const { recorder } = start(`k8s:///orders.${ns}:grpc`);
    await recorder.until(() => api.activeWatches() > 0 && requestsIn(ns, "watch").length === 1, "a watch");
    const reports = recorder.sets.length;
    await api.stop();
    try {
      api.applySlice(ns, slice("orders-a", [{ ip: "10.0.7.2" }, { ip: "10.0.7.3" }]));
      await recorder.until(() => recorder.errors.length > 0, "an error while the server is down");
      // Several reconnection attempts fail; the failure is reported once and the set is kept.
      const failing = recorder.logged("debug", "still failing");
      await recorder.until(
        () => recorder.logged("debug", "still failing") >= failing + 3,
        "three more failed attempts",
      );
      expect(recorder.sets.length).toBe(reports);
      expect(recorder.errors).toHaveLength(1);
      expect(recorder.errors[0]?.message).toMatch(/unreachable .*ECONNREFUSED.*keeping the last 2 endpoints/);
      expect(recorder.logged("warn", "unreachable")).toBe(1);
      expect(recorder.logged("debug", "still failing")).toBeGreaterThan(0);
    } finally {
      await api.start();
    }
    await recorder.until(
      () => JSON.stringify(recorder.current()) === JSON.stringify(["10.0.7.2:50051", "10.0.7.3:50051"]),
      "the update made while the server was down",
    );
    expect(recorder.sets.length).toBe(reports + 1);
    expect(recorder.logged("info", "answers again")).toBe(1);
  });

  it("names the missing RBAC verbs and namespace on 403, and recovers when granted", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.8.1" }]));
    api.forbid(true);
    try {
      const { recorder } = start(`k8s:///orders.${ns}:grpc`);
      await recorder.until(() => requestsIn(ns, "list").length >= 3, "three refused lists");
      expect(recorder.errors).toHaveLength(1);
      const message = recorder.errors[0]?.message ?? "";
      expect(message).toContain('forbidden to read EndpointSlices in namespace "' + ns + '"');
      expect(message).toContain("get, list and watch on endpointslices.discovery.k8s.io");
      expect(message).toContain(`in namespace "${ns}"`);
      expect(recorder.logged("warn", "forbidden")).toBe(1);
      expect(recorder.sets).toHaveLength(0);
      api.forbid(false);
      await recorder.until(() => recorder.sets.length === 1, "the set once access is granted");
      expect(recorder.current()).toEqual(["10.0.8.1:50051"]);
    } finally {
      api.forbid(false);
    }
  });

  it("reads KUBECONFIG when no kubeconfigPath is given, and honours kubeconfigContext", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.3.2" }]));
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = api.writeKubeconfig({ namespace: ns, context: "other" });
    try {
      const recorder = createRecorder();
      const resolver = createKubernetesResolver(parseTarget("k8s:///orders:grpc") as KubernetesTarget, {
        logger: recorder.logger,
        options: { kubeconfigContext: "other" },
      });
      resolvers.push(resolver);
      resolver.start(recorder.listener);
      await recorder.until(() => recorder.sets.length > 0, "a first set");
      expect(recorder.current()).toEqual(["10.0.3.2:50051"]);
      const missing = createKubernetesResolver(parseTarget("k8s:///orders:grpc") as KubernetesTarget, {
        logger: recorder.logger,
        options: { kubeconfigContext: "nope" },
      });
      resolvers.push(missing);
      const other = createRecorder();
      missing.start(other.listener);
      await other.until(() => other.errors.length > 0, "an error");
      expect(other.errors[0]?.message).toContain(
        'kubeconfig context "nope" (option kubeconfigContext) does not exist; contexts: other',
      );
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });

  it("uses the in-cluster service account: namespace from its file, the token re-read as it rotates", async () => {
    const root = mkdtempSync(join(tmpdir(), "in-cluster-"));
    const dir = join(root, "var/run/secrets/kubernetes.io/serviceaccount");
    mkdirSync(dir, { recursive: true });
    const ns = freshNamespace();
    writeFileSync(join(dir, "token"), api.token);
    writeFileSync(join(dir, "ca.crt"), readFileSync(api.caPath));
    writeFileSync(join(dir, "namespace"), ns);
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.3.3" }]));
    const saved = { ...process.env };
    delete process.env.KUBECONFIG;
    process.env.KUBERNETES_SERVICE_HOST = "127.0.0.1";
    process.env.KUBERNETES_SERVICE_PORT = String(api.port);
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      const recorder = createRecorder();
      follow(recorder);
      const resolver = createKubernetesResolver(
        parseTarget("k8s:///orders:grpc") as KubernetesTarget,
        { logger: recorder.logger, options: { reconnectInitialMs: 50, reconnectMaxMs: 200 } },
        { serviceAccountRoot: root },
      );
      resolvers.push(resolver);
      resolver.start(recorder.listener);
      await recorder.until(() => recorder.sets.length > 0, "a first set");
      expect(recorder.current()).toEqual(["10.0.3.3:50051"]);
      await recorder.until(() => api.activeWatches() > 0 && requestsIn(ns, "watch").length === 1, "a watch");

      // The kubelet rotates the token; the old one stops working after a while.
      writeFileSync(join(dir, "token"), api.rotateToken());
      vi.setSystemTime(Date.now() + 61_000);
      api.dropWatches();
      api.applySlice(ns, slice("orders-a", [{ ip: "10.0.3.4" }]));
      await recorder.until(() => recorder.current()[0] === "10.0.3.4:50051", "the update with the new token");
      expect(requestsIn(ns, "watch").filter((r) => r.status === 401)).toEqual([]);
      expect(recorder.errors).toEqual([]);
    } finally {
      vi.useRealTimers();
      process.env = saved;
      kubeconfigPath = api.writeKubeconfig({ namespace: "from-context" });
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("authenticates with a client certificate from the kubeconfig", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.3.5" }]));
    const recorder = createRecorder();
    const resolver = createKubernetesResolver(parseTarget(`k8s:///orders.${ns}:grpc`) as KubernetesTarget, {
      logger: recorder.logger,
      options: { kubeconfigPath: api.writeKubeconfig({ clientCertificate: true }) },
    });
    resolvers.push(resolver);
    resolver.start(recorder.listener);
    await recorder.until(() => recorder.sets.length > 0, "a first set");
    expect(recorder.current()).toEqual(["10.0.3.5:50051"]);
    expect(requestsIn(ns, "list")[0]?.status).toBe(200);
  });

  it("reports rejected credentials", async () => {
    const ns = freshNamespace();
    const recorder = createRecorder();
    const resolver = createKubernetesResolver(parseTarget(`k8s:///orders.${ns}:grpc`) as KubernetesTarget, {
      logger: recorder.logger,
      options: { kubeconfigPath: api.writeKubeconfig({ token: "wrong" }), reconnectInitialMs: 50 },
    });
    resolvers.push(resolver);
    follow(recorder);
    resolver.start(recorder.listener);
    await recorder.until(() => recorder.errors.length > 0, "an error");
    expect(recorder.errors[0]?.message).toMatch(/rejected the credentials \(kubeconfig from option kubeconfigPath\)/);
    expect(recorder.errors[0]?.message).toContain(
      `get, list and watch on endpointslices.discovery.k8s.io in namespace "${ns}"`,
    );
  });

  it("stops watching on close", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.9.1" }]));
    const { recorder, resolver } = start(`k8s:///orders.${ns}:grpc`);
    await recorder.until(() => api.activeWatches() > 0 && requestsIn(ns, "watch").length === 1, "a watch");
    const watchesBefore = api.activeWatches();
    resolver.close();
    await recorder.until(() => api.activeWatches() === watchesBefore - 1, "the watch to close", 5000);
    expect(() => resolver.start(recorder.listener)).toThrow(/start\(\)/);
  });

  it("leaves nothing that keeps the process alive after close, watching or backing off", async () => {
    const ns = freshNamespace();
    api.applySlice(ns, slice("orders-a", [{ ip: "10.0.9.9" }]));
    // A kubeconfig pointing at a server that is gone: the resolver is in its backoff when closed.
    const gone = await startFakeKubeApiServer();
    const goneKubeconfig = gone.writeKubeconfig();
    await gone.close();
    const script = fileURLToPath(new URL("./fixtures/k8s-close-client.ts", import.meta.url));
    const tsconfig = fileURLToPath(new URL("../tsconfig.json", import.meta.url));
    const started = Date.now();
    const { stdout, code } = await new Promise<{ stdout: string; code: number | null }>((resolve) => {
      const child = execFile(
        process.execPath,
        [
          "--import",
          "tsx",
          script,
          `${kubeconfigPath}=k8s:///orders.${ns}:grpc`,
          `${goneKubeconfig}=k8s:///orders.${ns}:grpc`,
        ],
        { env: { ...process.env, TSX_TSCONFIG_PATH: tsconfig }, timeout: 30_000 },
        (error, stdout) => resolve({ stdout, code: error ? ((error as { code?: number }).code ?? -1) : 0 }),
      );
      child.stdin?.end();
    });
    expect(stdout).toContain('"first":"endpoints 1"');
    expect(stdout).toContain('"first":"error unreachable"');
    expect(stdout).toContain("exit 0");
    expect(code).toBe(0);
    // It exits on its own, well before the 30 s reconnection delay or the 90 s idle timeout would end.
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it("rejects bad options and missing credentials with clear errors", () => {
    const target = parseTarget("k8s:///orders.shop:grpc") as KubernetesTarget;
    const make = (options: Record<string, unknown>) =>
      createKubernetesResolver(target, { logger: createRecorder().logger, options });
    expect(() => make({ kubeconfigPath, watchIdleTimeoutMs: -1 })).toThrow(
      /watchIdleTimeoutMs must be a positive number of milliseconds, got -1/,
    );
    expect(() => make({ kubeconfigPath, watchIdleTimeout: 5 })).toThrow(
      /unknown k8s resolver option "watchIdleTimeout"; accepted options: kubeconfigPath, kubeconfigContext, watchIdleTimeoutMs/,
    );
    expect(() => make({ kubeconfigPath: "/nonexistent/kubeconfig" })).toThrow(
      /the kubeconfig file "\/nonexistent\/kubeconfig" \(option kubeconfigPath\) does not exist/,
    );
    expect(() => make({ kubeconfigPath, reconnectInitialMs: 5000, reconnectMaxMs: 1000 })).toThrow(/reconnectMaxMs/);
  });
});
