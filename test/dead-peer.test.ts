import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { startLoad } from "./support/load.js";
import { startTcpForwarder, type TcpForwarder } from "./support/tcp-forwarder.js";
import { waitFor } from "./support/wait-for.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

describe("a backend that stops answering without closing", () => {
  it("is detected by keepalive pings; idempotent calls in flight on it succeed elsewhere", async () => {
    const backends: EchoBackend[] = await Promise.all(
      [1, 2].map((n) => startEchoBackend({ host: `127.0.3.${n}`, delayMs: 20 })),
    );
    const forwarder: TcpForwarder = await startTcpForwarder("127.0.3.10", backends[0] as EchoBackend);
    cleanups.push(() => forwarder.close(), ...backends.map((b) => () => b.close()));
    await using channel = createChannel({
      target: `static:///${forwarder.address},${backends[1]?.address}`,
      keepalive: { intervalMs: 500, timeoutMs: 1000 },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    const load = startLoad(() => client.echoIdempotent({ message: "x" }, { timeoutMs: 10_000 }), {
      concurrency: 6,
      intervalMs: 2,
    });
    const endpointOf = () => channel.snapshot().endpoints.find((e) => e.address === forwarder.address);
    await waitFor("calls through the forwarder", () => (endpointOf()?.calls ?? 0) > 20);

    forwarder.blackhole();
    const blackholed = Date.now();
    await waitFor("the dead connection to be dropped", () => endpointOf()?.state !== "ready", { timeoutMs: 10_000 });
    // One ping interval plus the ping timeout, with room for a busy machine.
    expect(Date.now() - blackholed).toBeLessThan(4000);
    load.mark();
    await waitFor("30 more calls", () => [...load.since().values()].reduce((a, b) => a + b, 0) >= 30);
    const result = await load.stop();
    expect(result.errors).toEqual([]);
    expect(channel.snapshot().endpoints.find((e) => e.address === forwarder.address)?.retries).toBeGreaterThan(0);
  });
});
