import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { silentLogger } from "@meshlite/core";
import { createProxy, type Proxy as MeshliteProxy } from "@meshlite/proxy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { shareOf, startTimedLoad } from "./support/timed-load.js";
import { waitFor } from "./support/wait-for.js";

// A proxy in zone b in front of six pods in three zones (.201/.202 a, .203/.204 b, .205/.206 c).
let backends: EchoBackend[];
let proxy: MeshliteProxy;
let baseUrl: string;
let adminUrl: string;
const zones = ["a", "a", "b", "b", "c", "c"];

beforeAll(async () => {
  backends = await Promise.all([201, 202, 203, 204, 205, 206].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
  proxy = createProxy({
    logger: silentLogger,
    routes: [
      {
        name: "echo",
        target: `static:///${backends.map((b) => b.address).join(",")}`,
        locality: {
          zone: "b",
          prefer: "zone",
          endpointZones: Object.fromEntries(backends.map((b, i) => [b.host, zones[i] as string])),
        },
      },
    ],
  });
  baseUrl = `http://127.0.0.200:${(await proxy.listen("127.0.0.200:0")).port}`;
  adminUrl = `http://127.0.0.200:${(await proxy.listenAdmin("127.0.0.200:0")).port}`;
  await waitFor("every endpoint ready", () => proxy.ready().routes[0]?.readyEndpoints === 6);
});
afterAll(async () => {
  await proxy.close(1000);
  await Promise.all(backends.map((b) => b.close()));
});

describe("zone-aware routing in the proxy", () => {
  it("keeps calls in its own zone and counts calls per zone on /metrics", async () => {
    const client = createClient(EchoService, createGrpcTransport({ baseUrl }));
    const load = startTimedLoad(() => client.echo({ message: "x" }), { concurrency: 4 });
    try {
      await waitFor("300 calls", () => load.total().latencies.length >= 300);
      const result = await load.stop();
      expect(result.failed).toBe(0);
      expect(shareOf(result, [backends[2]!.address, backends[3]!.address])).toBeGreaterThanOrEqual(0.95);
      let text = "";
      const count = (zone: string) =>
        Number(
          new RegExp(`^meshlite_proxy_zone_calls_total\\{route="echo",zone="${zone}"\\} (\\d+)$`, "m").exec(
            text,
          )?.[1] ?? 0,
        );
      await waitFor("every call counted", async () => {
        text = await (await fetch(`${adminUrl}/metrics`)).text();
        return count("a") + count("b") + count("c") === result.latencies.length;
      });
      expect(count("b")).toBeGreaterThanOrEqual(0.95 * result.latencies.length);
      expect(text).toContain('meshlite_proxy_locality{route="echo",state="preferring",zone="b"} 1');
    } finally {
      await load.stop();
    }
  });

  it("rejects bad locality options in a route", () => {
    expect(() =>
      createProxy({ routes: [{ target: "static:///127.0.0.1:1", locality: { prefer: "nearest" as never } }] }),
    ).toThrow('routes[0].locality.prefer: unknown preference "nearest"');
  });
});
