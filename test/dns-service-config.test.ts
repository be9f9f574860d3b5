import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Logger } from "@meshlite/core";
import { type ChannelEvent, createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { skipDnsTests, startDnsmasq } from "./support/dnsmasq.js";
import { startSamePortBackends } from "./support/same-port-backends.js";
import { waitFor } from "./support/wait-for.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const txtName = "_grpc_config.orders.test";
const idempotent = { service: "meshlite.echo.v1.EchoService", method: "EchoIdempotent" };
/** A2's TXT value: choices for other languages first, then ours. */
const record = (serviceConfig: unknown) =>
  `grpc_config=${JSON.stringify([
    { clientLanguage: ["go"], serviceConfig: { loadBalancingPolicy: "pick_first" } },
    { clientLanguage: ["node"], percentage: 100, serviceConfig },
  ])}`;
const roundRobinWithTimeout = {
  loadBalancingConfig: [{ round_robin: {} }],
  methodConfig: [{ name: [idempotent], timeout: "0.2s" }],
};

describe.skipIf(skipDnsTests())("service config from DNS TXT records (gRFC A2), served by dnsmasq", () => {
  it("applies the record's config, keeps the last good one when a later one is broken, follows a fix and a removal", async () => {
    const group = await startSamePortBackends(["127.0.80.21", "127.0.80.22"]);
    cleanups.push(() => group.closeAll());
    const dns = await startDnsmasq({
      ttl: 1,
      hosts: { "orders.test": group.all.map((b) => b.host) },
      txt: { [txtName]: ["v=spf1 -all", record(roundRobinWithTimeout)] },
    });
    cleanups.push(() => dns.close());
    const warnings: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn: (m) => void warnings.push(m), error() {} };
    const events: ChannelEvent[] = [];
    const channel = createChannel({
      target: `dns://${dns.address}/orders.test:${group.port}`,
      dnsServiceConfig: true,
      resolverOptions: { minRefreshMs: 200 },
      logger,
      onEvent: (e) => {
        if (e.type === "service-config") events.push(e);
      },
    });
    cleanups.push(() => channel.close());
    const client = createClient(EchoService, channel);

    // Applied: round robin, and the method's timeout.
    await waitFor("the DNS config applied", () => channel.snapshot().serviceConfig?.source === "dns");
    expect(channel.snapshot().balancer).toBe("round-robin");
    expect(dns.queryCount(txtName, "TXT")).toBeGreaterThan(0);
    const timedOut = ConnectError.from(await client.echoIdempotent({ message: "x", delayMs: 3000 }).catch((e) => e));
    expect(timedOut.code).toBe(Code.DeadlineExceeded);
    const servers = new Set<string>();
    for (let i = 0; i < 6; i++) servers.add((await client.echo({ message: "x" })).server);
    expect(servers.size).toBe(2);

    // A broken record: the last good config keeps running; the error is logged and counted.
    await dns.setTxt({
      [txtName]: [record({ methodConfig: [{ name: [idempotent], retryPolicy: { maxAttempts: 1 }, timeout: "5s" }] })],
    });
    await waitFor("the broken config rejected", () => channel.snapshot().serviceConfig?.rejected === 1, {
      timeoutMs: 15_000,
    });
    const message =
      "createChannel: DNS TXT _grpc_config.orders.test: grpc_config[1].serviceConfig.methodConfig[0].retryPolicy.maxAttempts: must be an integer >= 2, got 1";
    expect(channel.snapshot().serviceConfig).toEqual({ source: "dns", updates: 1, rejected: 1, lastError: message });
    expect(warnings).toContain(`${message}; keeping the service config that runs now`);
    expect(channel.snapshot().balancer).toBe("round-robin");
    const stillTimedOut = ConnectError.from(
      await client.echoIdempotent({ message: "x", delayMs: 3000 }).catch((e) => e),
    );
    expect(stillTimedOut.code).toBe(Code.DeadlineExceeded);

    // A fixed record replaces the running config.
    await dns.setTxt({ [txtName]: [record({ loadBalancingConfig: [{ pick_first: {} }] })] });
    await waitFor("the new config applied", () => channel.snapshot().balancer === "pick-first", { timeoutMs: 15_000 });
    await expect(client.echoIdempotent({ message: "x", delayMs: 400 })).resolves.toBeDefined();

    // No record any more: back to the channel's own options (no serviceConfig: meshlite's default balancer).
    await dns.setTxt({});
    await waitFor("back to the channel's own config", () => channel.snapshot().serviceConfig?.source === "none", {
      timeoutMs: 15_000,
    });
    expect(channel.snapshot().balancer).toBe("p2c");
    expect(events.map((e) => (e.type === "service-config" ? e.status : ""))).toEqual([
      "applied",
      "rejected",
      "applied",
      "removed",
    ]);
    expect(channel.snapshot().serviceConfig).toMatchObject({ updates: 3, rejected: 1 });
  });
});
