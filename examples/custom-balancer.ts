// A Balancer of your own: prefer endpoints in this client's zone, spread with
// p2c among them, and fall back to every candidate when the zone has none.
// `pick` gets the candidates (the endpoints that passed draining, health and
// outlier ejection, with their attributes, load and effective weight) and the
// call (method and request headers, see PickCall).
// Run: pnpm exec tsx examples/custom-balancer.ts
import { createClient } from "@connectrpc/connect";
import { type Balancer, createChannel, createP2cBalancer } from "meshlite";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { startEchoBackend } from "../test/support/echo-backend.js";

export function createZoneAwareBalancer(zone: string): Balancer {
  const within = createP2cBalancer();
  return {
    name: `zone-aware(${zone})`,
    pick(candidates, call) {
      const local = candidates.filter((c) => c.endpoint.zone === zone);
      return within.pick(local.length > 0 ? local : candidates, call);
    },
  };
}

async function main() {
  const backends = await Promise.all([2, 3, 4].map((n) => startEchoBackend({ host: `127.0.0.${n}` })));
  const zones = ["eu-1a", "eu-1a", "eu-1b"];
  const endpoints = backends.map((b, i) => ({ host: b.host, port: b.port, zone: zones[i] }));
  const channel = createChannel({
    target: "static:///echo.example:443",
    balancer: createZoneAwareBalancer("eu-1b"),
    // A fixed resolver that knows zones, as the Kubernetes resolver does. (The very
    // first call may go elsewhere while the zone's connection is still being made.)
    resolver: { start: (l) => l.onEndpoints(endpoints), refresh() {}, close() {} },
  });
  const client = createClient(EchoService, channel);
  const counts = new Map<string, number>();
  for (let i = 0; i < 20; i++) {
    const { server } = await client.echo({ message: "hi" });
    counts.set(server, (counts.get(server) ?? 0) + 1);
  }
  console.log("calls per backend (only 127.0.0.4 is in zone eu-1b):", Object.fromEntries(counts));
  await channel.close();
  await Promise.all(backends.map((b) => b.close()));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await main();
}
