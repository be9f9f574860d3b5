import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type BackendProcess, startBackendProcess } from "./support/backend-process.js";
import { startLoad } from "./support/load.js";
import { createManualResolver } from "./support/manual-resolver.js";
import { waitFor } from "./support/wait-for.js";

let running: BackendProcess[] = [];
afterEach(async () => {
  await Promise.all(running.map((b) => b.kill()));
  running = [];
});

const endpoint = (b: BackendProcess) => ({ host: b.host, port: b.port });

/**
 * Replaces 4 backends one by one, as a Kubernetes rollout does: the new pod
 * appears, the old one is stopped, and the resolver notices the old one is
 * gone a little later.
 */
async function rollingReplacement(stop: (b: BackendProcess) => Promise<void>) {
  running = await Promise.all([1, 2, 3, 4].map((n) => startBackendProcess(`127.0.1.${n}`)));
  const resolver = createManualResolver(running.map(endpoint));
  const channel = createChannel({ target: "static:///svc.test:80", resolver, logger: silentLogger });
  const client = createClient(EchoService, channel);
  const idempotent = startLoad(() => client.echoIdempotent({ message: "i", delayMs: 20 }, { timeoutMs: 15_000 }), {
    concurrency: 6,
    intervalMs: 2,
  });
  const plain = startLoad(() => client.echo({ message: "n", delayMs: 20 }, { timeoutMs: 15_000 }), {
    concurrency: 6,
    intervalMs: 2,
  });
  let inFlightOnStopped = 0;
  for (let n = 1; n <= 4; n++) {
    const old = running[n - 1] as BackendProcess;
    const fresh = await startBackendProcess(`127.0.1.${n + 10}`);
    running.push(fresh);
    resolver.set(running.map(endpoint));
    await waitFor(`calls on ${fresh.address}`, () =>
      channel.snapshot().endpoints.some((e) => e.address === fresh.address && e.calls > 5),
    );
    // The old pod is stopped while it is still in the set and taking calls. In flight on it: what
    // was running when it stopped, and what was sent to it before the connection was seen to die.
    const endpointOfOld = () => channel.snapshot().endpoints.find((e) => e.address === old.address);
    const before = endpointOfOld();
    const stopped = stop(old);
    await waitFor("the old connection to go", () => endpointOfOld()?.state !== "ready");
    inFlightOnStopped += (before?.inFlight ?? 0) + ((endpointOfOld()?.calls ?? 0) - (before?.calls ?? 0));
    await stopped;
    running = running.filter((b) => b !== old);
    resolver.set(running.map(endpoint));
    idempotent.mark();
    await waitFor(
      "calls after the replacement",
      () => [...idempotent.since().values()].reduce((a, b) => a + b, 0) > 20,
    );
  }
  const results = { idempotent: await idempotent.stop(), plain: await plain.stop(), inFlightOnStopped };
  await channel.close();
  return results;
}

describe("rolling replacement of every backend under load", () => {
  it("with graceful shutdown (GOAWAY, drain): zero failed calls of either kind", async () => {
    const { idempotent, plain } = await rollingReplacement((b) => b.stop());
    expect(idempotent.errors).toEqual([]);
    expect(plain.errors).toEqual([]);
    expect(idempotent.ok).toBeGreaterThan(100);
    expect(plain.ok).toBeGreaterThan(100);
  });

  it("with SIGKILL: zero failed idempotent calls; other calls fail only if they were in flight on the killed backend", async () => {
    const { idempotent, plain, inFlightOnStopped } = await rollingReplacement((b) => b.kill());
    expect(idempotent.errors).toEqual([]);
    expect(plain.failed).toBeLessThanOrEqual(inFlightOnStopped);
    expect(idempotent.ok).toBeGreaterThan(100);
  });
});
