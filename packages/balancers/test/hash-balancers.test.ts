import type { Balancer, EndpointLoad, PickCall, PickCandidate } from "@meshlite/core";
import { describe, expect, it } from "vitest";
import { createBalancer, createMaglevBalancer, createRingHashBalancer } from "../src/index.js";

interface Fake extends PickCandidate {
  inFlight: number;
}

/** A candidate named like a StatefulSet pod: `hashKey` is the pod name, `key` its (changing) address. */
function pod(name: string, address: string, weight = 1): Fake {
  const fake = {
    key: address,
    hashKey: name,
    endpoint: { host: address.split(":")[0] as string, port: 80, hashKey: name, weight },
    weight,
    inFlight: 0,
  } as Fake;
  const load: EndpointLoad = {
    get inFlight() {
      return fake.inFlight;
    },
    get pending() {
      return fake.inFlight;
    },
    latencyMs: () => 1,
    callRate: () => 0,
  };
  (fake as { load: EndpointLoad }).load = load;
  return fake;
}

const pods = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => pod(`web-${from + i}`, `10.0.0.${from + i}:80`));

/** A call whose hash header has `value` (no header when undefined). */
function callWith(value: string | undefined, header = "x-hash-key"): PickCall {
  return { method: "svc.v1.S/M", header: (name) => (name === header ? value : undefined) };
}

const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

/** Where each key goes: hash key of the endpoint, by key. */
function placement(balancer: Balancer, candidates: readonly PickCandidate[]): string[] {
  return keys.map((k) => (balancer.pick(candidates, callWith(k)) as PickCandidate).hashKey);
}

function shares(placed: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of placed) counts.set(p, (counts.get(p) ?? 0) + 1);
  return counts;
}

const moved = (a: string[], b: string[]) => a.filter((p, i) => p !== b[i]).length / a.length;

const kinds = [
  { name: "ring-hash", make: createRingHashBalancer, spread: 0.35 },
  { name: "maglev", make: createMaglevBalancer, spread: 0.12 },
] as const;

describe.each(kinds)("$name", ({ name, make, spread }) => {
  it("sends a key to the same endpoint every time, on every client, and spreads 10 000 keys over 8 endpoints", () => {
    const eight = pods(8);
    const first = placement(make(), eight);
    // Another client (another balancer instance) and a second pass agree.
    const b = make();
    expect(placement(b, eight)).toEqual(first);
    expect(placement(b, eight)).toEqual(first);
    const counts = shares(first);
    expect(counts.size).toBe(8);
    for (const [, n] of counts) {
      expect(n / 1250).toBeGreaterThan(1 - spread);
      expect(n / 1250).toBeLessThan(1 + spread);
    }
    console.log(`${name}: keys per endpoint over 8: ${[...counts.values()].join(", ")} (fair 1250)`);
  });

  it("moves about 1/9 of the keys to a ninth endpoint, and none between the other eight", () => {
    const eight = pods(8);
    const nine = [...eight, pod("web-8", "10.0.0.8:80")];
    const before = placement(make(), eight);
    const after = placement(make(), nine);
    const fraction = moved(before, after);
    console.log(`${name}: adding a ninth endpoint moved ${(fraction * 100).toFixed(1)}% of 10 000 keys (ideal 11.1%)`);
    expect(fraction).toBeGreaterThan(0.08);
    expect(fraction).toBeLessThan(name === "maglev" ? 0.16 : 0.14);
    // Of the keys that moved, (nearly) all went to the new endpoint.
    const toNew = before.filter((p, i) => p !== after[i] && after[i] === "web-8").length / before.length;
    expect(toNew / fraction).toBeGreaterThan(name === "maglev" ? 0.8 : 0.99);
  });

  it("keeps placement by hash key when the pods get new addresses (a StatefulSet rollout)", () => {
    const before = placement(make(), pods(8));
    const readdressed = Array.from({ length: 8 }, (_, i) => pod(`web-${i}`, `10.1.7.${i + 40}:80`));
    expect(placement(make(), readdressed)).toEqual(before);
  });

  it("sends a down endpoint's keys to the others, moves no other key, and gives them back when it returns", () => {
    const eight = pods(8);
    const b = make();
    const before = placement(b, eight);
    // The pool hands the balancer a new candidate array without the ejected endpoint.
    const without = eight.filter((c) => c.hashKey !== "web-3");
    const during = placement(b, without);
    expect(during).not.toContain("web-3");
    before.forEach((p, i) => {
      if (p !== "web-3") expect(during[i]).toBe(p);
    });
    // Its keys spread over the others rather than piling onto one.
    expect(shares(during.filter((_, i) => before[i] === "web-3")).size).toBeGreaterThan(3);
    expect(placement(b, [...eight])).toEqual(before);
  });

  it("gives an endpoint of weight 2 about twice the keys", () => {
    const set = [...pods(3), pod("web-big", "10.0.0.9:80", 2)];
    const counts = shares(placement(make(), set));
    const fair = 10_000 / 5;
    expect((counts.get("web-big") as number) / (2 * fair)).toBeGreaterThan(1 - spread);
    expect((counts.get("web-big") as number) / (2 * fair)).toBeLessThan(1 + spread);
    // A weight change builds a new table: the same set with equal weights places differently.
    const b = make();
    const weighted = placement(b, set);
    expect(placement(b, [...pods(3), pod("web-big", "10.0.0.9:80", 1)])).not.toEqual(weighted);
  });

  it("places by the resolver's weight: an effective weight that ramps (slow start) moves no key", () => {
    const b = make();
    const set = pods(4);
    const before = placement(b, set);
    const ramping = set.map((c, i) => (i === 2 ? { ...c, load: c.load, weight: 0.1 } : c));
    expect(placement(b, ramping)).toEqual(before);
  });

  it("gives a call without the header a random endpoint", () => {
    const eight = pods(8);
    const b = make();
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add((b.pick(eight, callWith(undefined)) as PickCandidate).hashKey);
    expect(seen.size).toBe(8);
  });

  it("hashes the header that hashHeader names, whatever its case", () => {
    const eight = pods(8);
    const b = make({ hashHeader: "X-User-Id" });
    const other = make();
    const byUser = keys.slice(0, 50).map((k) => b.pick(eight, callWith(k, "x-user-id"))?.hashKey);
    expect(keys.slice(0, 50).map((k) => b.pick(eight, callWith(k, "x-user-id"))?.hashKey)).toEqual(byUser);
    expect(keys.slice(0, 50).map((k) => other.pick(eight, callWith(k))?.hashKey)).toEqual(byUser);
  });

  it("with bounded load keeps the hottest endpoint under the factor when one key takes 30% of calls", () => {
    const run = (b: Balancer) => {
      const eight = pods(8);
      const inFlight: Fake[] = [];
      let worst = 0;
      let random = 12345;
      for (let i = 0; i < 20_000; i++) {
        random = (Math.imul(random, 1103515245) + 12345) >>> 0;
        const key = random % 10 < 3 ? "hot-key" : `k-${random % 997}`;
        const c = b.pick(eight, callWith(key)) as Fake;
        // What bounded load promises: at pick time the endpoint is within c x the fair share.
        const total = inFlight.length;
        const bound = Math.ceil((1.25 * (total + 1)) / 8);
        worst = Math.max(worst, (c.inFlight + 1) / bound);
        c.inFlight++;
        inFlight.push(c);
        // 80 calls in flight: the oldest completes.
        if (inFlight.length > 80) (inFlight.shift() as Fake).inFlight--;
      }
      return worst;
    };
    expect(run(make({ hashBalanceFactor: 1.25 }))).toBeLessThanOrEqual(1);
    // Without it, the hot key's endpoint takes far more than its share.
    expect(run(make())).toBeGreaterThan(1.5);
  });

  it("rejects bad options with what is accepted", () => {
    expect(() => make({ hashHeader: "x y" })).toThrow(`${name}: hashHeader must be a request header name`);
    expect(() => make({ hashBalanceFactor: 0.5 })).toThrow(`${name}: hashBalanceFactor must be a number from 1 to 100`);
    expect(() => make({ hashBalanceFactor: 150 })).toThrow("Envoy's percent 125 is 1.25 here");
  });

  it("is named by createBalancer", () => {
    expect(createBalancer(name).name).toBe(name);
  });
});

describe("ring-hash options", () => {
  it("rejects ring sizes outside 1..8 Mi or min above max", () => {
    expect(() => createRingHashBalancer({ minRingSize: 0 })).toThrow(
      "ring-hash: minRingSize must be an integer from 1 to 8388608, got 0",
    );
    expect(() => createRingHashBalancer({ maxRingSize: 9_000_000 })).toThrow("maxRingSize must be an integer");
    expect(() => createRingHashBalancer({ minRingSize: 4096, maxRingSize: 1024 })).toThrow(
      "ring-hash: minRingSize (4096) must not exceed maxRingSize (1024)",
    );
  });
});

describe("maglev options", () => {
  it("rejects a table size that is not a prime", () => {
    expect(() => createMaglevBalancer({ tableSize: 65536 })).toThrow(
      "maglev: tableSize must be a prime (such as 65537), got 65536",
    );
    expect(() => createMaglevBalancer({ tableSize: 3 })).toThrow("maglev: tableSize must be an integer from 7");
  });
});
