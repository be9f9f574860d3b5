import { createClient } from "@connectrpc/connect";
import { createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { startLoad } from "./support/load.js";
import { waitFor } from "./support/wait-for.js";

let backends: EchoBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

async function* messages(n: number) {
  for (let i = 0; i < n; i++) yield { message: `m${i}` };
}

describe("GOAWAY from a server", () => {
  it("costs no call: in-flight calls finish, new ones go on a new connection", async () => {
    backends = await Promise.all([71, 72].map((n) => startEchoBackend({ host: `127.0.0.${n}`, delayMs: 20 })));
    const [a, b] = backends as [EchoBackend, EchoBackend];
    await using channel = createChannel({ target: `static:///${a.address},${b.address}`, balancer: "round-robin" });
    const client = createClient(EchoService, channel);
    const unary = startLoad(() => client.echo({ message: "x" }), { concurrency: 8, intervalMs: 0 });
    const streams = startLoad(
      async () => {
        const r = await client.clientStream(messages(3));
        return { server: r.server };
      },
      { concurrency: 2, intervalMs: 0 },
    );
    for (let round = 0; round < 5; round++) {
      const before = a.totalCalls();
      a.goaway();
      await waitFor("calls on a again", () => a.totalCalls() > before + 10);
    }
    const results = [await unary.stop(), await streams.stop()];
    for (const r of results) {
      expect(r.errors).toEqual([]);
      expect(r.failed).toBe(0);
    }
    expect(channel.snapshot().endpoints.every((e) => e.state === "ready")).toBe(true);
  });
});
