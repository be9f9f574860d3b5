import { createClient, type Interceptor } from "@connectrpc/connect";
import { createOrcaInterceptor } from "@meshlite/orca";
import { createChannel, createWeightedRoundRobinBalancer, silentLogger } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";

let backends: EchoBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

/**
 * A backend's ORCA reports, as a server whose utilization is its calls per
 * second over its capacity would send them (so twice the capacity reads as
 * half the utilization for the same calls), while `reporting()` holds.
 */
function reportingAs(capacity: number, reporting: () => boolean): Interceptor {
  const orca = createOrcaInterceptor({
    loadOptions: { sampleIntervalMs: 250, metrics: (m) => ({ applicationUtilization: m.rpsFractional / capacity }) },
  });
  return (next) => {
    const withReports = orca(next);
    return (req) => (reporting() ? withReports(req) : next(req));
  };
}

describe("weighted round robin over ORCA reports", () => {
  it("sends about twice the calls to a backend with twice the capacity, and back to equal when reports stop", async () => {
    let reporting = true;
    backends = await Promise.all(
      [1, 2, 3, 4].map((n) =>
        startEchoBackend({
          host: `127.0.16.${50 + n}`,
          interceptors: [reportingAs(n === 1 ? 200 : 100, () => reporting)],
        }),
      ),
    );
    await using channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      balancer: createWeightedRoundRobinBalancer({
        blackoutPeriodMs: 1000,
        weightExpirationPeriodMs: 2000,
        weightUpdatePeriodMs: 250,
      }),
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);

    /** Calls from 6 concurrent callers for `ms`; each backend's share of them. */
    const run = async (ms: number) => {
      const counts = new Map<string, number>();
      const until = performance.now() + ms;
      await Promise.all(
        Array.from({ length: 6 }, async () => {
          while (performance.now() < until) {
            const { server } = await client.echo({ message: "x" });
            counts.set(server, (counts.get(server) ?? 0) + 1);
          }
        }),
      );
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      return { total, shares: backends.map((b) => (counts.get(b.address) ?? 0) / total) };
    };

    await run(1800); // the blackout period, and reports settling
    const weighted = await run(3000);
    console.log(
      `WRR shares with reports (${weighted.total} calls): ${weighted.shares.map((s) => s.toFixed(3)).join(", ")}`,
    );
    // Twice the capacity: 2/5 of the calls, the others 1/5 each (within 15%).
    expect(weighted.shares[0]).toBeGreaterThan(0.4 * 0.85);
    expect(weighted.shares[0]).toBeLessThan(0.4 * 1.15);
    for (const share of weighted.shares.slice(1)) {
      expect(share).toBeGreaterThan(0.2 * 0.85);
      expect(share).toBeLessThan(0.2 * 1.15);
    }

    reporting = false;
    await run(2600); // the expiration period passes without reports
    const lapsed = await run(2000);
    console.log(
      `WRR shares after reports stopped (${lapsed.total} calls): ${lapsed.shares.map((s) => s.toFixed(3)).join(", ")}`,
    );
    for (const share of lapsed.shares) {
      expect(share).toBeGreaterThan(0.25 * 0.85);
      expect(share).toBeLessThan(0.25 * 1.15);
    }
  });
});
