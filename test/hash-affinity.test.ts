import { Code, createClient } from "@connectrpc/connect";
import { type Balancer, createChannel, createMaglevBalancer, createRingHashBalancer, silentLogger } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { waitFor } from "./support/wait-for.js";

let backends: EchoBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

const users = Array.from({ length: 40 }, (_, i) => `user-${i}`);

const kinds: Array<{ name: string; make: () => Balancer; net: number }> = [
  { name: "ring-hash", make: () => createRingHashBalancer({ hashHeader: "x-user-id" }), net: 1 },
  { name: "maglev", make: () => createMaglevBalancer({ hashHeader: "x-user-id" }), net: 2 },
];

describe.each(kinds)("$name over a channel", ({ make, net }) => {
  async function setUp(first: number) {
    backends = await Promise.all(
      [1, 2, 3, 4].map((n) => startEchoBackend({ host: `127.0.16.${net * 10 + first + n}` })),
    );
    const events: string[] = [];
    const channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      balancer: make(),
      outlierDetection: { consecutiveFailures: 3, baseEjectionMs: 1500, failureRate: false },
      onEvent: (e) => {
        if (e.type === "endpoint-ejected" || e.type === "endpoint-returned") events.push(`${e.type} ${e.address}`);
      },
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    await waitFor("every endpoint a candidate", () => channel.snapshot().endpoints.every((e) => e.candidate));
    const failures: string[] = [];
    /** One idempotent call per user: the server each one landed on. */
    const round = async () => {
      const placed: string[] = [];
      for (const user of users) {
        const answer = await client
          .echoIdempotent({ message: user }, { headers: { "x-user-id": user }, timeoutMs: 5000 })
          .catch((e: Error) => failures.push(`${user}: ${e.message}`));
        placed.push(typeof answer === "number" ? "failed" : answer.server);
      }
      return placed;
    };
    return { channel, client, events, failures, round };
  }

  it("keeps every user on its endpoint, moves only an ejected endpoint's users, and brings them back", async () => {
    const { channel, events, failures, round } = await setUp(0);
    await using _ = channel;
    const before = await round();
    expect(await round()).toEqual(before);
    const bad = backends[1] as EchoBackend;
    const itsUsers = before.filter((s) => s === bad.address).length;
    expect(itsUsers).toBeGreaterThan(0);
    expect(new Set(before).size).toBe(4);

    bad.setFailCode(Code.Unavailable);
    const during = await round();
    await waitFor("the failing endpoint to be ejected", () => events.includes(`endpoint-ejected ${bad.address}`));
    const ejected = await round();
    // Idempotent calls that met it were retried on the next endpoint: none failed.
    expect(failures).toEqual([]);
    expect(ejected).not.toContain(bad.address);
    before.forEach((server, i) => {
      if (server !== bad.address) expect([users[i], during[i], ejected[i]]).toEqual([users[i], server, server]);
    });

    bad.setFailCode(0);
    await waitFor("the ejection to end", () => events.includes(`endpoint-returned ${bad.address}`), {
      timeoutMs: 15_000,
    });
    expect(await round()).toEqual(before);
    expect(failures).toEqual([]);
  });

  it("moves a stopped endpoint's users to the others without a failed call, and back when it returns", async () => {
    const { channel, failures, round } = await setUp(4);
    await using _ = channel;
    const before = await round();
    const gone = backends[2] as EchoBackend;
    // Stopped while calls go on: GOAWAY, then the connection closes.
    const stopped = gone.close();
    const during = await round();
    await stopped;
    await waitFor("the stopped endpoint to leave the candidates", () =>
      channel.snapshot().endpoints.some((e) => e.address === gone.address && !e.candidate),
    );
    const after = await round();
    expect(failures).toEqual([]);
    expect(after).not.toContain(gone.address);
    before.forEach((server, i) => {
      if (server !== gone.address) expect([users[i], during[i], after[i]]).toEqual([users[i], server, server]);
    });

    // The same address comes back (a restarted pod): its users return to it.
    const back = await startEchoBackend({ host: gone.host, port: gone.port });
    backends[2] = back;
    await waitFor(
      "the endpoint to be a candidate again",
      () => channel.snapshot().endpoints.every((e) => e.candidate),
      {
        timeoutMs: 30_000,
      },
    );
    expect(await round()).toEqual(before);
    expect(failures).toEqual([]);
  });
});
