import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DnsTarget, endpointKey, parseTarget, type Resolver, TargetError } from "@meshlite/core";
import { createDnsResolver, DnsResolutionError, type DnsResolverOptions } from "@meshlite/resolvers";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type Dnsmasq, skipDnsTests, startDnsmasq } from "../../../test/support/dnsmasq.js";
import { createRecorder } from "../../../test/support/resolver-recorder.js";
import { waitFor } from "../../../test/support/wait-for.js";

const resolvers: Resolver[] = [];
afterEach(() => {
  for (const resolver of resolvers.splice(0)) {
    resolver.close();
  }
});

/** Starts a DNS resolver for `target`; closed after the test. */
function start(target: string, options: DnsResolverOptions = {}) {
  const recorder = createRecorder();
  const parsed = parseTarget(target) as DnsTarget;
  // Tests choose their search list; the machine's resolv.conf must not matter.
  const resolver = createDnsResolver(parsed, {
    logger: recorder.logger,
    options: { search: [], ndots: 1, ...options },
  });
  resolvers.push(resolver);
  resolver.start(recorder.listener);
  return { resolver, ...recorder };
}

describe.skipIf(skipDnsTests())("dns resolver against dnsmasq", () => {
  let dns: Dnsmasq;
  beforeAll(async () => {
    dns = await startDnsmasq({ ttl: 1 });
  });
  afterAll(async () => {
    await dns.close();
  });

  it("resolves every A record of a name to an endpoint on the target's port", async () => {
    await dns.setHosts({ "basic.test": ["127.0.0.2", "127.0.0.3"] });
    const r = start(`dns://${dns.address}/basic.test:50051`);
    await waitFor("the first set", () => r.sets.length > 0);
    expect(r.current()).toEqual(["127.0.0.2:50051", "127.0.0.3:50051"]);
    expect(r.errors).toEqual([]);
  });

  it("uses port 443 when the target gives none", async () => {
    await dns.setHosts({ "noport.test": ["127.0.0.2"] });
    const r = start(`dns://${dns.address}/noport.test`);
    await waitFor("the first set", () => r.sets.length > 0);
    expect(r.current()).toEqual(["127.0.0.2:443"]);
  });

  it("re-resolves at the TTL, reports changes and only changes", async () => {
    await dns.setHosts({ "ttl.test": ["127.0.0.2", "127.0.0.3"] });
    // TTL 1 s, floor 1 s: a lookup about every 1-1.1 s.
    const r = start(`dns://${dns.address}/ttl.test:1000`, { minRefreshMs: 1000 });
    await waitFor("the first set", () => r.sets.length === 1);
    await waitFor("two more lookups at the TTL", () => dns.queryCount("ttl.test", "A") >= 3);
    expect(r.sets).toHaveLength(1);

    await dns.setHosts({ "ttl.test": ["127.0.0.3", "127.0.0.4"] });
    const changedAt = performance.now();
    await waitFor("the new address", () => r.current().includes("127.0.0.4:1000"));
    expect(performance.now() - changedAt).toBeLessThan(3000);
    expect(r.current()).toEqual(["127.0.0.3:1000", "127.0.0.4:1000"]);
    expect(r.sets).toHaveLength(2);
  });

  it("does not re-resolve before minRefreshMs even when the TTL is shorter", async () => {
    await dns.setHosts({ "floor.test": ["127.0.0.2"] });
    const r = start(`dns://${dns.address}/floor.test:1000`, { minRefreshMs: 2500, refreshJitter: 0 });
    await waitFor("the first set", () => r.sets.length === 1);
    const startedAt = performance.now();
    await waitFor("the second lookup", () => dns.queryCount("floor.test", "A") >= 2);
    // The TTL is 1 s; the floor holds the second lookup back to 2.5 s.
    expect(performance.now() - startedAt).toBeGreaterThan(2000);
  });

  it("refresh() looks up at once, and at most once per second however often it is called", async () => {
    await dns.setHosts({ "refresh.test": ["127.0.0.2"] });
    const r = start(`dns://${dns.address}/refresh.test:1000`, { minRefreshMs: 60_000 });
    await waitFor("the first set", () => r.sets.length === 1);
    const before = dns.queryCount("refresh.test", "A");

    await dns.setHosts({ "refresh.test": ["127.0.0.2", "127.0.0.5"] });
    const asked = performance.now();
    r.resolver.refresh();
    await waitFor("the new address after refresh()", () => r.current().includes("127.0.0.5:1000"));
    expect(performance.now() - asked).toBeLessThan(1500);

    // A storm of refresh() calls (every endpoint lost at once) for 2.5 s.
    const stormStart = performance.now();
    while (performance.now() - stormStart < 2500) {
      r.resolver.refresh();
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const lookups = dns.queryCount("refresh.test", "A") - before;
    // One for the first refresh(), then one per second of storm (plus the trailing one).
    expect(lookups).toBeGreaterThanOrEqual(3);
    expect(lookups).toBeLessThanOrEqual(5);
  });

  it("keeps the last good set while the DNS server is down, and follows again when it is back", async () => {
    await dns.setHosts({ "down.test": ["127.0.0.2", "127.0.0.3"] });
    const r = start(`dns://${dns.address}/down.test:1000`, { minRefreshMs: 500, retryInitialMs: 200 });
    await waitFor("the first set", () => r.sets.length === 1);

    await dns.stop();
    r.resolver.refresh();
    await waitFor("a warning", () => r.logs.some((l) => l.level === "warn" && /unreachable/.test(l.message)));
    await waitFor("three more failed attempts", () => r.logged("debug", "still retrying") >= 3);
    expect(r.sets).toHaveLength(1);
    expect(r.errors).toEqual([]);

    await dns.setHosts({ "down.test": ["127.0.0.3", "127.0.0.6"] });
    await dns.start();
    await waitFor("the set after the server is back", () => r.current().includes("127.0.0.6:1000"));
    expect(r.current()).toEqual(["127.0.0.3:1000", "127.0.0.6:1000"]);
    expect(r.logs.some((l) => l.level === "info" && /resolves again/.test(l.message))).toBe(true);
  });

  it("refresh() during the retry backoff tries again at once instead of waiting it out", async () => {
    await dns.setHosts({ "backoff.test": ["127.0.0.2"] });
    const r = start(`dns://${dns.address}/backoff.test:1000`, { minRefreshMs: 60_000, retryInitialMs: 20_000 });
    await waitFor("the first set", () => r.sets.length === 1);
    await dns.stop();
    r.resolver.refresh();
    await waitFor("the failure", () => r.logs.some((l) => l.level === "warn" && /unreachable/.test(l.message)));
    // Now sleeping 20-40 s before the next try.
    await dns.setHosts({ "backoff.test": ["127.0.0.3"] });
    await dns.start();
    const askedAt = performance.now();
    r.resolver.refresh();
    await waitFor("the set after refresh()", () => r.current().includes("127.0.0.3:1000"), { timeoutMs: 10_000 });
    expect(performance.now() - askedAt).toBeLessThan(2500);
  });

  it("keeps the last good set when the server stops answering (timeouts)", async () => {
    await dns.setHosts({ "hang.test": ["127.0.0.2"] });
    const r = start(`dns://${dns.address}/hang.test:1000`, {
      minRefreshMs: 500,
      timeoutMs: 200,
      tries: 1,
      retryInitialMs: 200,
    });
    await waitFor("the first set", () => r.sets.length === 1);
    dns.pause();
    try {
      await waitFor("a timeout warning", () => r.logs.some((l) => l.level === "warn" && /timeout/.test(l.message)));
    } finally {
      dns.resume();
    }
    expect(r.sets).toHaveLength(1);
    expect(r.errors).toEqual([]);
  });

  it("keeps the last good set when the name disappears, unless acceptEmpty", async () => {
    await dns.setHosts({ "gone.test": ["127.0.0.2"], "gone2.test": ["127.0.0.2"] });
    const kept = start(`dns://${dns.address}/gone.test:1000`, { minRefreshMs: 500, retryInitialMs: 200 });
    const emptied = start(`dns://${dns.address}/gone2.test:1000`, { minRefreshMs: 500, acceptEmpty: true });
    await waitFor("the first sets", () => kept.sets.length === 1 && emptied.sets.length === 1);
    await dns.setHosts({});
    await waitFor("the empty set", () => emptied.current().length === 0 && emptied.sets.length === 2);
    await waitFor("a warning", () => kept.logs.some((l) => l.level === "warn" && /NXDOMAIN/.test(l.message)));
    expect(kept.sets).toHaveLength(1);
    expect(kept.current()).toEqual(["127.0.0.2:1000"]);
  });

  it("reports a name that never resolved with the reason, and resolves once it exists", async () => {
    await dns.setHosts({});
    const r = start(`dns://${dns.address}/later.test:1000`, { retryInitialMs: 200, retryMaxMs: 400 });
    await waitFor("an error", () => r.errors.length > 0);
    const error = r.errors[0] as DnsResolutionError;
    expect(error).toBeInstanceOf(DnsResolutionError);
    expect(error.kind).toBe("nxdomain");
    expect(error.message).toContain('DNS name "later.test" did not resolve: NXDOMAIN');
    expect(error.message).toContain(dns.address);
    await dns.setHosts({ "later.test": ["127.0.0.7"] });
    await waitFor("the set once the name exists", () => r.sets.length === 1);
    expect(r.current()).toEqual(["127.0.0.7:1000"]);
  });

  it("says REFUSED, timeout and unreachable apart", async () => {
    // Outside the server's local domain with no upstream: REFUSED.
    const refused = start(`dns://${dns.address}/elsewhere.example:1000`);
    await waitFor("the REFUSED error", () => refused.errors.length > 0);
    expect((refused.errors[0] as DnsResolutionError).kind).toBe("refused");
    expect(refused.errors[0]?.message).toMatch(/did not resolve: REFUSED/);

    const stopped = await startDnsmasq();
    await stopped.stop();
    const unreachable = start(`dns://${stopped.address}/any.test:1000`);
    await waitFor("the unreachable error", () => unreachable.errors.length > 0);
    expect((unreachable.errors[0] as DnsResolutionError).kind).toBe("unreachable");
    expect(unreachable.errors[0]?.message).toMatch(/did not resolve: the DNS server is unreachable/);

    await stopped.start();
    stopped.pause();
    try {
      const timeout = start(`dns://${stopped.address}/any.test:1000`, { timeoutMs: 200, tries: 1 });
      await waitFor("the timeout error", () => timeout.errors.length > 0);
      expect((timeout.errors[0] as DnsResolutionError).kind).toBe("timeout");
      expect(timeout.errors[0]?.message).toMatch(/did not resolve: timeout/);
    } finally {
      stopped.resume();
      await stopped.close();
    }
  });

  it("says SERVFAIL when the server fails", async () => {
    // An upstream answering unsigned data to a validating dnsmasq: SERVFAIL.
    const upstream = await startDnsmasq({ localDomains: ["example"], hosts: { "bogus.example": ["127.0.0.2"] } });
    const validating = await startDnsmasq({ upstream: upstream.address, dnssec: true });
    try {
      const r = start(`dns://${validating.address}/bogus.example:1000`);
      await waitFor("the SERVFAIL error", () => r.errors.length > 0);
      expect((r.errors[0] as DnsResolutionError).kind).toBe("servfail");
      expect(r.errors[0]?.message).toMatch(/did not resolve: SERVFAIL/);
    } finally {
      await validating.close();
      await upstream.close();
    }
  });

  it("applies the search list and ndots of a resolv.conf, as inside a pod", async () => {
    const dir = await mkdtemp(join(tmpdir(), "meshlite-resolv-"));
    try {
      const conf = join(dir, "resolv.conf");
      await writeFile(
        conf,
        "nameserver 127.0.0.1\nsearch shop.svc.cluster.test svc.cluster.test # comment\noptions ndots:5\n",
      );
      await dns.setHosts({
        "orders.shop.svc.cluster.test": ["127.0.0.8"],
        "a.b.test": ["127.0.0.9"],
        "a.b.test.svc.cluster.test": ["127.0.0.10"],
      });
      const options = (extra: DnsResolverOptions) => ({
        resolvConf: conf,
        search: undefined,
        ndots: undefined,
        ...extra,
      });
      // "orders" and "orders.shop" have fewer than 5 dots: the search list comes first.
      const short = start(`dns://${dns.address}/orders:1000`, options({}));
      const medium = start(`dns://${dns.address}/orders.shop:1000`, options({}));
      // "a.b.test" has 2 dots: with ndots 5 a search domain wins, with ndots 2 the name as written.
      const searched = start(`dns://${dns.address}/a.b.test:1000`, options({}));
      const asWritten = start(`dns://${dns.address}/a.b.test:1000`, options({ ndots: 2 }));
      // A trailing dot makes the name absolute.
      const absolute = start(`dns://${dns.address}/a.b.test.:1000`, options({}));
      await waitFor("every resolver's first set", () =>
        [short, medium, searched, asWritten, absolute].every((r) => r.sets.length > 0),
      );
      expect(short.current()).toEqual(["127.0.0.8:1000"]);
      expect(medium.current()).toEqual(["127.0.0.8:1000"]);
      expect(searched.current()).toEqual(["127.0.0.10:1000"]);
      expect(asWritten.current()).toEqual(["127.0.0.9:1000"]);
      expect(absolute.current()).toEqual(["127.0.0.9:1000"]);

      // A name that is nowhere: the error lists every name tried.
      const missing = start(`dns://${dns.address}/missing:1000`, options({}));
      await waitFor("the error", () => missing.errors.length > 0);
      expect(missing.errors[0]?.message).toContain("missing.shop.svc.cluster.test");
      expect(missing.errors[0]?.message).toContain("missing.svc.cluster.test");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("takes ports and weights from SRV records and follows SRV changes", async () => {
    await dns.setHosts({ "pod-a.srv.test": ["127.0.0.2"], "pod-b.srv.test": ["127.0.0.3", "::1"] });
    await dns.setSrv([
      { name: "_grpc._tcp.orders.srv.test", target: "pod-a.srv.test", port: 5001, weight: 10 },
      { name: "_grpc._tcp.orders.srv.test", target: "pod-b.srv.test", port: 5002, weight: 30 },
      // A higher priority value is a backup: not used while priority 0 has records.
      { name: "_grpc._tcp.orders.srv.test", target: "pod-a.srv.test", port: 5009, priority: 1, weight: 5 },
    ]);
    const byName = start(`dns://${dns.address}/_grpc._tcp.orders.srv.test`, { srv: true, minRefreshMs: 500 });
    const byPrefix = start(`dns://${dns.address}/orders.srv.test:443`, { srv: "_grpc._tcp", minRefreshMs: 500 });
    await waitFor("the SRV sets", () => byName.sets.length > 0 && byPrefix.sets.length > 0);
    const weights = (r: ReturnType<typeof start>) =>
      Object.fromEntries((r.sets.at(-1)?.endpoints ?? []).map((e) => [endpointKey(e), e.weight]));
    const expected = { "127.0.0.2:5001": 10, "127.0.0.3:5002": 30, "[::1]:5002": 30 };
    expect(weights(byName)).toEqual(expected);
    expect(weights(byPrefix)).toEqual(expected);

    // Weight 0 next to others: rarely (1% of the smallest other weight).
    await dns.setSrv([
      { name: "_grpc._tcp.orders.srv.test", target: "pod-a.srv.test", port: 5003, weight: 0 },
      { name: "_grpc._tcp.orders.srv.test", target: "pod-b.srv.test", port: 5004, weight: 50 },
    ]);
    await waitFor("the changed SRV set", () => byName.current().includes("127.0.0.2:5003"));
    expect(weights(byName)).toEqual({ "127.0.0.2:5003": 0.5, "127.0.0.3:5004": 50, "[::1]:5004": 50 });
    // Every weight 0: equal.
    await dns.setSrv([{ name: "_grpc._tcp.orders.srv.test", target: "pod-a.srv.test", port: 5005, weight: 0 }]);
    await waitFor("the SRV set with weight 0", () => byName.current().includes("127.0.0.2:5005"));
    expect(weights(byName)).toEqual({ "127.0.0.2:5005": 1 });
    await dns.setSrv([]);
  });

  it("makes dual-stack answers separate endpoints, and can restrict or prefer a family", async () => {
    await dns.setHosts({ "dual.test": ["127.0.0.2", "::1"], "v4.test": ["127.0.0.4"] });
    const dual = start(`dns://${dns.address}/dual.test:1000`);
    const v4 = start(`dns://${dns.address}/dual.test:1000`, { family: "ipv4" });
    const v6 = start(`dns://${dns.address}/dual.test:1000`, { family: "ipv6" });
    const preferV6 = start(`dns://${dns.address}/dual.test:1000`, { family: "prefer-ipv6" });
    const fallback = start(`dns://${dns.address}/v4.test:1000`, { family: "prefer-ipv6" });
    const all = [dual, v4, v6, preferV6, fallback];
    await waitFor("every set", () => all.every((r) => r.sets.length > 0));
    expect(dual.sets[0]?.endpoints.map(endpointKey)).toEqual(["127.0.0.2:1000", "[::1]:1000"]);
    expect(v4.current()).toEqual(["127.0.0.2:1000"]);
    expect(v6.current()).toEqual(["[::1]:1000"]);
    expect(preferV6.current()).toEqual(["[::1]:1000"]);
    expect(fallback.current()).toEqual(["127.0.0.4:1000"]);
  });

  it("leaves nothing running after close()", async () => {
    await dns.setHosts({ "close.test": ["127.0.0.2"] });
    const r = start(`dns://${dns.address}/close.test:1000`, { minRefreshMs: 200 });
    await waitFor("the first set", () => r.sets.length === 1);
    r.resolver.close();
    const count = dns.queryCount("close.test");
    await dns.setHosts({ "close.test": ["127.0.0.3"] });
    r.resolver.refresh();
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(dns.queryCount("close.test")).toBe(count);
    expect(r.sets).toHaveLength(1);
  });
});

describe("dns resolver without a DNS server", () => {
  it("resolves IP literals and localhost to themselves without a query", async () => {
    const v4 = start("dns:///127.0.0.9:7000");
    const v6 = start("[::1]:7001");
    const local = start("localhost:7002");
    const localV4 = start("localhost:7002", { family: "ipv4" });
    await waitFor("every set", () => [v4, v6, local, localV4].every((r) => r.sets.length > 0));
    expect(v4.current()).toEqual(["127.0.0.9:7000"]);
    expect(v6.current()).toEqual(["[::1]:7001"]);
    expect(local.current()).toEqual(["127.0.0.1:7002", "[::1]:7002"]);
    expect(localV4.current()).toEqual(["127.0.0.1:7002"]);
  });

  it("rejects bad options with a message saying what is accepted", () => {
    const target = parseTarget("dns:///orders.test:1000") as DnsTarget;
    const make = (options: Record<string, unknown>) => () =>
      createDnsResolver(target, { logger: createRecorder().logger, options });
    expect(make({ minRefreshMs: "5s" })).toThrow(
      'invalid resolverOptions.minRefreshMs for the dns resolver: expected a number from 0 to 2147483647, got "5s"',
    );
    expect(make({ family: "ipv5" })).toThrow(/expected one of "dual", "ipv4", "ipv6", "prefer-ipv4", "prefer-ipv6"/);
    expect(make({ srv: "grpc tcp" })).toThrow(/resolverOptions.srv .* expected true, false or a name prefix/);
    expect(make({ tries: 1.5 })).toThrow(/resolverOptions.tries .* expected an integer from 1 to 100, got number 1.5/);
    expect(make({ minRefresh: 5 })).toThrow(/unknown resolverOptions field "minRefresh" .* accepted: minRefreshMs/);
    expect(make({ minRefreshMs: 10_000, maxRefreshMs: 1000 })).toThrow(/maxRefreshMs \(1000\) is below minRefreshMs/);
    expect(make({})).not.toThrow();
  });

  it("rejects malformed dns targets at parse time with the reason", () => {
    expect(() => parseTarget("dns://dns.example/orders.test:1000")).toThrow(TargetError);
    expect(() => parseTarget("dns://dns.example/orders.test:1000")).toThrow(/DNS server "dns.example" must be an IP/);
    expect(() => parseTarget("dns:///orders.test:99999")).toThrow(/out of range/);
    expect(() => parseTarget("dns:///orders..test:80")).toThrow(/not a valid host name/);
    expect(() => parseTarget("dns://127.0.0.1:53")).toThrow(/the "\/" before the host is missing/);
  });
});
