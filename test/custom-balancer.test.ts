import { createClient } from "@connectrpc/connect";
import { type Balancer, createChannel, type PickCandidate, silentLogger } from "meshlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { waitFor } from "./support/wait-for.js";

/** FNV-1a over two strings. */
function hash(a: string, b: string): number {
  let h = 0x811c9dc5;
  for (const s of [a, b]) {
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Rendezvous hashing on a request header, written against the Balancer
 * contract: the candidate with the highest hash of (header value, hash key)
 * takes the call, so a value keeps its endpoint while the set stays the same.
 */
function createHeaderHashBalancer(header: string, methods: string[]): Balancer {
  return {
    name: `hash(${header})`,
    pick(candidates, call) {
      methods.push(call.method);
      const value = call.header(header) ?? "";
      let best: PickCandidate | undefined;
      let bestHash = -1;
      for (const c of candidates) {
        const h = hash(value, c.hashKey);
        if (h > bestHash) {
          best = c;
          bestHash = h;
        }
      }
      return best;
    },
  };
}

let backends: EchoBackend[];
beforeAll(async () => {
  backends = await Promise.all([101, 102, 103, 104].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
});
afterAll(async () => {
  await Promise.all(backends.map((b) => b.close()));
});

describe("a custom balancer", () => {
  it("that hashes on a request header sends every call with the same value to the same endpoint", async () => {
    const methods: string[] = [];
    await using channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      balancer: createHeaderHashBalancer("x-user-id", methods),
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    // Every endpoint connected first: the hash is over the candidates, which grow while connections come up.
    await client.echo({ message: "warm-up" });
    await waitFor("every endpoint ready", () => channel.snapshot().endpoints.every((e) => e.candidate));

    const serverOf = new Map<string, Set<string>>();
    for (let round = 0; round < 3; round++) {
      for (let user = 0; user < 24; user++) {
        const id = `user-${user}`;
        // Headers as a record, as Headers and as pairs: the balancer reads them all the same.
        const headers =
          round === 0 ? { "X-User-Id": id } : round === 1 ? new Headers({ "x-user-id": id }) : [["x-user-id", id]];
        const { server } = await client.echo({ message: id }, { headers: headers as HeadersInit });
        const servers = serverOf.get(id) ?? new Set();
        servers.add(server);
        serverOf.set(id, servers);
      }
    }
    for (const [id, servers] of serverOf) expect([id, [...servers]]).toEqual([id, [expect.any(String)]]);
    // And the users are spread over the endpoints, not all on one.
    const used = new Set([...serverOf.values()].flatMap((s) => [...s]));
    expect(used.size).toBeGreaterThanOrEqual(3);

    // Streaming calls are balanced the same way.
    const streamed: string[] = [];
    for await (const m of client.serverStream({ message: "s", count: 2 }, { headers: { "x-user-id": "user-0" } })) {
      streamed.push(m.server);
    }
    expect(new Set(streamed)).toEqual(serverOf.get("user-0"));
    expect(methods).toContain("meshlite.echo.v1.EchoService/Echo");
    expect(methods).toContain("meshlite.echo.v1.EchoService/ServerStream");
  });
});
