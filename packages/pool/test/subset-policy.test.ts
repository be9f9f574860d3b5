import type { Endpoint, Resolver, ResolverListener } from "@meshlite/core";
import { silentLogger } from "@meshlite/core";
import { describe, expect, it } from "vitest";
import { waitFor } from "../../../test/support/wait-for.js";
import {
  apertureShares,
  createEndpointPool,
  createPool,
  resolveSubset,
  ringPhase,
  type SubsetOptions,
} from "../src/index.js";
import { createFakeConnection, createFakeResolver, type FakeConnection } from "./support/fake-connection.js";

const endpoints = (n: number): Endpoint[] =>
  Array.from({ length: n }, (_, i) => ({ host: `10.1.${i >> 8}.${i & 255}`, port: 50051 }));

const roundRobin = { name: "first-candidate", pick: (c: readonly unknown[]) => c[0] } as never;

function setup(subset: SubsetOptions, initial: Endpoint[], subsetPeers?: Resolver) {
  const connections = new Map<string, FakeConnection>();
  const resolver = createFakeResolver(initial);
  const pool = createEndpointPool({
    target: { scheme: "static", form: "static", raw: "static:///test", authority: "test", addresses: [] },
    resolver,
    balancer: roundRobin,
    logger: silentLogger,
    outlierDetection: false,
    locality: false,
    slowStart: false,
    subset: resolveSubset(subset, "test: subset"),
    ...(subsetPeers ? { subsetPeers } : {}),
    createConnection(endpoint) {
      const c = createFakeConnection(endpoint);
      connections.set(c.address, c);
      return c;
    },
  });
  const connected = () => [...connections.values()].filter((c) => c.connected);
  const readyConnected = () => {
    for (const c of connected()) if (c.state() !== "ready") c.set("ready");
  };
  return { pool, resolver, connections, connected, readyConnected };
}

describe("subset policy", () => {
  it("connects only the subset's members, and hands the balancer only those", async () => {
    const { pool, connected, readyConnected, connections } = setup(
      { size: 6, minEndpoints: 0, rank: 3, count: 10 },
      endpoints(60),
    );
    expect(connected()).toHaveLength(6);
    readyConnected();
    const snap = pool.snapshot();
    expect(snap.subset?.mode).toBe("aperture");
    expect(snap.subset?.rank).toBe(3);
    expect(new Set(pool.candidates().map((sc) => sc.key))).toEqual(new Set(snap.subset?.members.map((m) => m.address)));
    expect([...connections.values()].filter((c) => c.connects > 0)).toHaveLength(6);
    await pool.destroy();
  });

  it("keeps connecting only its members when the balancer is replaced (a new service config)", async () => {
    const { pool, connections, connected, readyConnected } = setup(
      { size: 6, minEndpoints: 0, rank: 3, count: 10 },
      endpoints(60),
    );
    readyConnected();
    pool.setBalancer({ name: "another", pick: (c) => c[c.length - 1] });
    expect(connected()).toHaveLength(6);
    expect([...connections.values()].filter((c) => c.connects > 0)).toHaveLength(6);
    await pool.destroy();
  });

  it("keeps the old members taking calls until every new member is ready, then lets them go", async () => {
    const { pool, resolver, connections, connected, readyConnected } = setup(
      { size: 6, minEndpoints: 0, rank: 5, count: 20 },
      endpoints(60),
    );
    readyConnected();
    const before = new Set(pool.candidates().map((sc) => sc.key));
    resolver.set(endpoints(120));
    const members = new Set(pool.snapshot().subset?.members.map((m) => m.address));
    const leaving = [...before].filter((a) => !members.has(a));
    const joining = [...members].filter((a) => !before.has(a));
    expect(leaving.length).toBeGreaterThan(0);
    expect(joining.length).toBeGreaterThan(0);
    // The new members are dialled; the old ones stay connected and keep taking calls.
    for (const a of joining) expect(connections.get(a)?.connected).toBe(true);
    for (const a of leaving) expect(connections.get(a)?.connected).toBe(true);
    const candidates = new Set(pool.candidates().map((sc) => sc.key));
    for (const a of leaving) expect(candidates.has(a)).toBe(true);
    expect(pool.snapshot().subset?.leaving.sort()).toEqual(leaving.sort());
    // All but one new member ready: the old ones still stay.
    for (const a of joining.slice(1)) connections.get(a)?.set("ready");
    for (const a of leaving) expect(connections.get(a)?.connected).toBe(true);
    connections.get(joining[0] as string)?.set("ready");
    for (const a of leaving) expect(connections.get(a)?.connected).toBe(false);
    expect(new Set(pool.candidates().map((sc) => sc.key))).toEqual(members);
    expect(
      connected()
        .map((c) => c.address)
        .sort(),
    ).toEqual([...members].sort());
    await pool.destroy();
  });

  it("replaces a member that fails to connect with the next endpoint past the subset, until it is ready again", async () => {
    const { pool, connections, connected, readyConnected } = setup(
      { size: 6, minEndpoints: 0, rank: 2, count: 10 },
      endpoints(60),
    );
    readyConnected();
    const members = pool.snapshot().subset?.members ?? [];
    const failed = members[2] as { address: string; share: number };
    connections.get(failed.address)?.set("transient-failure", new Error("connect ECONNREFUSED"));
    const snap = pool.snapshot().subset;
    const substitute = snap?.members.find((m) => m.replaces === failed.address);
    expect(substitute).toBeDefined();
    expect(substitute?.share).toBe(failed.share);
    expect(members.some((m) => m.address === substitute?.address)).toBe(false);
    expect(snap?.failing).toEqual([failed.address]);
    // The substitute is dialled; the failed member too (it retries with backoff).
    expect(connections.get(substitute?.address as string)?.connected).toBe(true);
    expect(connections.get(failed.address)?.connected).toBe(true);
    connections.get(substitute?.address as string)?.set("ready");
    const working = members.filter((m) => m !== failed).map((m) => m.address);
    expect(new Set(pool.candidates().map((sc) => sc.key))).toEqual(new Set([...working, substitute?.address]));
    // Retrying does not end the failure; being ready does.
    connections.get(failed.address)?.set("connecting");
    expect(pool.snapshot().subset?.failing).toEqual([failed.address]);
    connections.get(failed.address)?.set("ready");
    expect(pool.snapshot().subset?.members).toEqual(members);
    expect(pool.snapshot().subset?.failing).toEqual([]);
    expect(connections.get(substitute?.address as string)?.connected).toBe(false);
    expect(connected()).toHaveLength(6);
    await pool.destroy();
  });

  it("skips substitutes that fail too, and dials at most twice the subset when everything fails", async () => {
    const { pool, connections, connected } = setup({ size: 6, minEndpoints: 0, rank: 7, count: 10 }, endpoints(60));
    const fail = (address: string) => connections.get(address)?.set("transient-failure", new Error("timeout"));
    const first = pool.snapshot().subset?.members[0]?.address as string;
    fail(first);
    const substitute = pool.snapshot().subset?.members.find((m) => m.replaces === first)?.address as string;
    fail(substitute);
    const next = pool.snapshot().subset?.members.find((m) => m.replaces === first)?.address;
    expect(next).toBeDefined();
    expect(next).not.toBe(substitute);
    // The failed substitute stays dialled, so that its return is seen.
    expect(connections.get(substitute)?.connected).toBe(true);
    expect(pool.snapshot().subset?.failing.sort()).toEqual([first, substitute].sort());
    // The client's own network is down: every dial fails.
    for (let round = 0; round < 20; round++)
      for (const c of connected()) if (c.state() !== "transient-failure") fail(c.address);
    expect(connected().length).toBeLessThanOrEqual(12);
    expect(connected().length).toBeGreaterThan(6);
    // The network returns: the members take their places and the rest is let go.
    for (const c of connected()) c.set("ready");
    expect(pool.snapshot().subset?.failing).toEqual([]);
    expect(connected()).toHaveLength(6);
    expect(pool.snapshot().subset?.members.every((m) => m.replaces === undefined)).toBe(true);
    await pool.destroy();
  });

  it("replaces failed members of a rendezvous subset by the next-ranked endpoints", async () => {
    const { pool, connections, readyConnected } = setup({ size: 6, seed: "pod-b" }, endpoints(60));
    readyConnected();
    const before = pool.snapshot().subset?.members.map((m) => m.address) ?? [];
    connections.get(before[0] as string)?.set("transient-failure", new Error("refused"));
    const after = pool.snapshot().subset?.members ?? [];
    expect(after).toHaveLength(7);
    const substitute = after.find((m) => m.replaces === before[0]);
    expect(before).not.toContain(substitute?.address);
    // The same seed picks the same substitute: it is the next-ranked endpoint.
    const other = setup({ size: 7, seed: "pod-b" }, endpoints(60));
    expect(other.pool.snapshot().subset?.members.map((m) => m.address)).toContain(substitute?.address);
    await Promise.all([pool.destroy(), other.pool.destroy()]);
  });

  it("is off below minEndpoints and falls back to a seeded rendezvous subset without a rank", async () => {
    const small = setup({ size: 6 }, endpoints(40));
    expect(small.connected()).toHaveLength(40);
    expect(small.pool.snapshot().subset?.mode).toBe("off");
    await small.pool.destroy();
    const a = setup({ size: 6, seed: "pod-a" }, endpoints(60));
    const b = setup({ size: 6, seed: "pod-a" }, endpoints(60));
    expect(a.pool.snapshot().subset?.mode).toBe("rendezvous");
    expect(a.connected().map((c) => c.address)).toEqual(b.connected().map((c) => c.address));
    expect(a.connected()).toHaveLength(6);
    await Promise.all([a.pool.destroy(), b.pool.destroy()]);
  });

  it("widens while its members are busy and narrows back once they are not", async () => {
    const { pool, connected, readyConnected } = setup(
      {
        size: 6,
        minEndpoints: 0,
        rank: 0,
        count: 20,
        widen: { highInFlight: 2, lowInFlight: 0.5, step: 2, intervalMs: 20 },
      },
      endpoints(100),
    );
    readyConnected();
    expect(connected()).toHaveLength(6);
    // Three calls in flight on every member: above the band.
    const calls = pool.candidates().flatMap((sc) => [0, 1, 2].map(() => ({ sc, at: sc.begin() })));
    await waitFor("the subset to widen", () => {
      readyConnected();
      return (pool.snapshot().subset?.effectiveSize ?? 0) >= 8;
    });
    expect(connected().length).toBeGreaterThanOrEqual(8);
    expect(connected().length).toBeLessThanOrEqual(9);
    for (const { sc, at } of calls) sc.end(at, { ok: true, failure: false, pending: true, sample: true });
    await waitFor("the subset to narrow back", () => {
      readyConnected();
      const snap = pool.snapshot().subset;
      return snap?.effectiveSize === 6 && snap.leaving.length === 0;
    });
    expect(connected()).toHaveLength(6);
    await pool.destroy();
  });

  it("waits up to a second for its peers before connecting anything, then takes its rank", async () => {
    let listener: ResolverListener | undefined;
    const peers: Resolver = {
      start: (l) => {
        listener = l;
      },
      refresh() {},
      close() {},
    };
    const subset = { size: 6, minEndpoints: 0, peers: "dns:///peers.test:1", selfAddress: "10.9.0.2" };
    const { pool, connected } = setup(subset, endpoints(120), peers);
    expect(pool.snapshot().subset?.mode).toBe("waiting");
    expect(connected()).toHaveLength(0);
    listener?.onEndpoints(["10.9.0.1", "10.9.0.2", "10.9.0.3"].map((host) => ({ host, port: 1 })));
    expect(pool.snapshot().subset).toMatchObject({ mode: "aperture", count: 3 });
    // 120 servers over 3 clients: the aperture covers a third of the ring (every server needs a client).
    expect(connected().length).toBeGreaterThanOrEqual(40);
    expect(connected().length).toBeLessThanOrEqual(41);
    await pool.destroy();

    const silent: Resolver = { start() {}, refresh() {}, close() {} };
    const late = setup(subset, endpoints(120), silent);
    await waitFor("the rendezvous fallback", () => late.pool.snapshot().subset?.mode === "rendezvous");
    expect(late.connected()).toHaveLength(6);
    await late.pool.destroy();
  });

  it("gives every server the same share and each client at most size + 1 servers, whatever the ring's phase", () => {
    const hosts = Array.from({ length: 31 }, (_, i) => `10.20.0.${i}`);
    for (const [servers, clients, size, phase] of [
      [200, 30, 12, 0],
      [210, 31, 12, ringPhase(hosts)],
      [24, 6, 6, 0.37],
      [1000, 7, 16, 5.5],
    ] as const) {
      const load = new Array<number>(servers).fill(0);
      for (let rank = 0; rank < clients; rank++) {
        const shares = apertureShares(servers, rank + phase, clients, size);
        // Clients must cover the ring: the aperture is at least servers / clients wide.
        expect(shares.length).toBeLessThanOrEqual(Math.max(size, Math.ceil(servers / clients)) + 1);
        expect(shares.reduce((s, x) => s + x.share, 0)).toBeCloseTo(1, 9);
        for (const { index, share } of shares) load[index] = (load[index] as number) + share;
      }
      for (const l of load) expect(l).toBeCloseTo(clients / servers, 9);
    }
  });

  it("rejects bad options with a message that says what is accepted", () => {
    expect(() => resolveSubset({ size: 0 }, "createChannel: subset")).toThrow(
      "createChannel: subset.size must be a whole number >= 1, got 0",
    );
    expect(() => resolveSubset({ rank: 2 }, "createChannel: subset")).toThrow(/rank and count go together/);
    expect(() => resolveSubset({ rank: 3, count: 3 }, "createChannel: subset")).toThrow(/rank must be below count/);
    expect(() => resolveSubset({ peers: "nope:///x" }, "createChannel: subset")).toThrow(/subset\.peers/);
    expect(() => resolveSubset({ sizes: 3 } as never, "createChannel: subset")).toThrow(/sizes/);
    expect(() =>
      createPool({
        target: "static:///127.0.0.1:1",
        subset: { peers: "k8s:///checkout.shop:http", selfAddress: "10.0.0.1" },
      }),
    ).toThrow(/createPool: subset\.peers "k8s:\/\/\/checkout\.shop:http" needs a resolver for "k8s:"/);
    expect(() => resolveSubset({ widen: { highInFlight: 2, lowInFlight: 3 } }, "createChannel: subset")).toThrow(
      "createChannel: subset.widen: lowInFlight (3) must be below highInFlight (2)",
    );
    expect(resolveSubset(undefined, "x")).toBe(false);
    expect(resolveSubset(true, "x", {})).toMatchObject({ size: 12, minEndpoints: 50 });
    expect(resolveSubset({ peers: "dns:///peers:1" }, "x", { POD_IP: "10.9.0.1" })).toMatchObject({
      selfAddress: "10.9.0.1",
    });
  });
});
