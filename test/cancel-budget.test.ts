import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { type Channel, createChannel } from "meshlite";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { startLoad } from "./support/load.js";
import { waitFor } from "./support/wait-for.js";

// A caller that cancels many calls (user aborts, deadlines) must not get its
// connection killed: node:http2 servers answer more than 1000 RST_STREAMs in a
// burst, 33 a second after, with GOAWAY INTERNAL_ERROR, and every other call
// on the connection fails with it. The channel keeps under that budget.
let backend: EchoBackend;
let channel: Channel;
beforeAll(async () => {
  backend = await startEchoBackend({ host: "127.0.63.1" });
  channel = createChannel({ target: `static:///${backend.address}`, logger: silentLogger });
});
afterAll(async () => {
  await channel.close();
  await backend.close();
});

it("cancelling 3000 calls in flight costs the other calls on the connection nothing", async () => {
  const client = createClient(EchoService, channel);
  await client.echo({ message: "warm" });
  const accepted = backend.acceptedConnections();
  const load = startLoad(() => client.echo({ message: "legit" }), { concurrency: 2, intervalMs: 5 });
  await waitFor("legit calls to flow", () => load.result.ok > 10);

  let canceled = 0;
  for (let batch = 0; batch < 30; batch++) {
    const started = backend.calls.get("EchoIdempotent") ?? 0;
    const calls = Array.from({ length: 100 }, () => {
      const abort = new AbortController();
      // Slow calls, so each is still running at the server when it is cancelled.
      const call = client.echoIdempotent({ message: "slow", delayMs: 10_000 }, { signal: abort.signal }).then(
        () => {
          throw new Error("a cancelled call succeeded");
        },
        (e) => {
          expect(ConnectError.from(e).code).toBe(Code.Canceled);
          canceled++;
        },
      );
      return { abort, call };
    });
    await waitFor(
      "the slow calls to reach the server",
      () => (backend.calls.get("EchoIdempotent") ?? 0) >= started + 100,
    );
    for (const { abort } of calls) abort.abort();
    await Promise.all(calls.map((c) => c.call));
  }
  expect(canceled).toBe(3000);
  const before = load.result.ok;
  await waitFor("legit calls after the cancellations", () => load.result.ok > before + 20);
  const result = await load.stop();
  expect(result.errors).toEqual([]);
  // The server let go of every cancelled call (reset, or ended and reset later as budget came back).
  await waitFor("the cancelled calls to end at the server", () => backend.inFlight() === 0, {
    timeoutMs: 60_000,
  });
  // One connection all along: the server never cut it.
  expect(backend.acceptedConnections()).toBe(accepted);
});
