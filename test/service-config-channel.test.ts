import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { type ChannelOptions, createChannel, type ServiceConfig } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { closedPort } from "./support/free-port.js";
import { waitFor } from "./support/wait-for.js";

let backends: EchoBackend[] = [];
afterEach(async () => {
  await Promise.all(backends.map((b) => b.close()));
  backends = [];
});

async function start(hosts: string[]): Promise<EchoBackend[]> {
  backends = await Promise.all(hosts.map((host) => startEchoBackend({ host })));
  return backends;
}
const targetOf = (bs: EchoBackend[]) => `static:///${bs.map((b) => b.address).join(",")}`;
const echoCalls = (b: EchoBackend) => b.calls.get("Echo") ?? 0;
const allReady = (channel: { snapshot(): { endpoints: Array<{ state: string }> } }) =>
  waitFor("all endpoints ready", () => channel.snapshot().endpoints.every((e) => e.state === "ready"));

const echo = "meshlite.echo.v1.EchoService";
/** grpc-js style: round robin, and a retry policy for one method (Echo, which has side effects). */
const grpcConfig: ServiceConfig = {
  loadBalancingConfig: [{ round_robin: {} }],
  methodConfig: [
    {
      name: [{ service: echo, method: "Echo" }],
      retryPolicy: {
        maxAttempts: 3,
        initialBackoff: "0.01s",
        maxBackoff: "0.05s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    },
  ],
  retryThrottling: { maxTokens: 100, tokenRatio: 1 },
};
/** The same in meshlite's own options. */
const meshliteOptions: Partial<ChannelOptions> = {
  balancer: "round-robin",
  retry: {
    methods: {
      [`${echo}/Echo`]: {
        maxAttempts: 3,
        initialBackoffMs: 10,
        maxBackoffMs: 50,
        backoffMultiplier: 2,
        retryableCodes: [Code.Unavailable],
      },
    },
    budget: { maxTokens: 100, tokenRatio: 1 },
  },
};
/** Both, with a small retry budget. */
const throttled = { maxTokens: 10, tokenRatio: 0.1 };

/** Runs `n` Echo calls one after the other; returns how many succeeded and the attempts each backend saw. */
async function run(options: Partial<ChannelOptions>, n: number) {
  const before = backends.map(echoCalls);
  await using channel = createChannel({
    target: targetOf(backends),
    outlierDetection: false,
    slowStart: false,
    logger: silentLogger,
    ...options,
  });
  await allReady(channel);
  const client = createClient(EchoService, channel);
  let ok = 0;
  for (let i = 0; i < n; i++) {
    if (
      await client.echo({ message: "x" }).then(
        () => true,
        () => false,
      )
    )
      ok++;
  }
  const attempts = backends.map((b, i) => echoCalls(b) - (before[i] as number));
  return { ok, attempts, total: attempts.reduce((a, b) => a + b, 0), balancer: channel.snapshot().balancer };
}

describe("a grpc-js service config behaves as the equivalent meshlite options", () => {
  it("round_robin + a retry policy for one method: every call survives a down backend, with the same attempts", async () => {
    const [bad] = (await start(["127.0.80.1", "127.0.80.2", "127.0.80.3"])) as [EchoBackend];
    bad.setFailCode(Code.Unavailable);
    const fromConfig = await run({ serviceConfig: grpcConfig }, 30);
    const fromOptions = await run(meshliteOptions, 30);
    expect(fromConfig.balancer).toBe("round-robin");
    for (const r of [fromConfig, fromOptions]) {
      expect(r.ok).toBe(30);
      // Round robin: about a third of the first attempts land on the failing backend (a retry's
      // pick among the other two shifts the rotation a little), each retried once elsewhere.
      expect(r.attempts[0]).toBeGreaterThanOrEqual(7);
      expect(r.attempts[0]).toBeLessThanOrEqual(16);
      expect(r.total).toBe(30 + (r.attempts[0] as number));
    }
    // The same spread over the backends (which good backend takes the retries depends on the
    // rotation's random start).
    const sorted = (r: { attempts: number[] }) => [...r.attempts].sort((x, y) => x - y);
    console.log(
      "attempts per backend (failing one first): config",
      fromConfig.attempts,
      "options",
      fromOptions.attempts,
    );
    for (const [i, n] of sorted(fromConfig).entries())
      expect(Math.abs(n - (sorted(fromOptions)[i] as number))).toBeLessThanOrEqual(5);
    expect(Math.abs((fromConfig.attempts[0] as number) - (fromOptions.attempts[0] as number))).toBeLessThanOrEqual(5);
    // Without the policy the method is not retried (it has side effects): the calls that hit the bad backend fail.
    const plain = await run({ balancer: "round-robin" }, 30);
    expect(plain.ok).toBe(30 - (plain.attempts[0] as number));
  });

  it("every backend down: the same number of attempts, capped by maxAttempts and the retry throttling", async () => {
    await start(["127.0.80.4", "127.0.80.5", "127.0.80.6"]);
    for (const b of backends) b.setFailCode(Code.Unavailable);
    const fromConfig = await run({ serviceConfig: JSON.stringify({ ...grpcConfig, retryThrottling: throttled }) }, 10);
    const fromOptions = await run({ ...meshliteOptions, retry: { ...meshliteOptions.retry, budget: throttled } }, 10);
    expect(fromConfig.ok).toBe(0);
    expect(fromOptions.ok).toBe(0);
    // A failed attempt takes a token of 10, retries go on while more than 5 are left: the first
    // call makes 3 attempts (10 -> 7), the second 2 (7 -> 5), the other 8 one each: 13.
    expect(fromConfig.total).toBe(13);
    expect(fromOptions.total).toBe(13);
    for (const r of [fromConfig, fromOptions]) for (const n of r.attempts) expect(n).toBeGreaterThan(0);
  });
});

describe("method config: timeout, waitForReady, hedging", () => {
  it("a method's timeout is the deadline of its calls that set none, and caps a caller's longer one", async () => {
    const [b] = (await start(["127.0.80.7"])) as [EchoBackend];
    await using channel = createChannel({
      target: targetOf(backends),
      logger: silentLogger,
      serviceConfig: { methodConfig: [{ name: [{ service: echo, method: "EchoIdempotent" }], timeout: "0.3s" }] },
    });
    const client = createClient(EchoService, channel);
    await client.echo({ message: "warm" });
    const startedAt = performance.now();
    const error = await client.echoIdempotent({ message: "x", delayMs: 3000 }).catch((e: unknown) => e);
    const tookMs = performance.now() - startedAt;
    expect(ConnectError.from(error).code).toBe(Code.DeadlineExceeded);
    expect(tookMs).toBeGreaterThanOrEqual(250);
    expect(tookMs).toBeLessThan(2000);
    // The server was told the deadline (grpc-timeout).
    const sent = b.timeouts.at(-1) as number;
    expect(sent).toBeGreaterThan(200);
    expect(sent).toBeLessThanOrEqual(300);
    // Other methods have no deadline. As in gRPC, the method's timeout caps a caller's longer
    // one, and a caller's shorter one stands.
    await expect(client.echo({ message: "x", delayMs: 500 })).resolves.toBeDefined();
    const capped = await client.echoIdempotent({ message: "x", delayMs: 3000 }, { timeoutMs: 5000 }).catch((e) => e);
    expect(ConnectError.from(capped).code).toBe(Code.DeadlineExceeded);
    expect(b.timeouts.at(-1)).toBeLessThanOrEqual(300);
    await client.echoIdempotent({ message: "x" }, { timeoutMs: 150 });
    expect(b.timeouts.at(-1)).toBeLessThanOrEqual(150);
  });

  it("waitForReady false fails fast when every endpoint is failing; the default waits up to the deadline", async () => {
    const port = await closedPort("127.0.80.8");
    const target = `static:///127.0.80.8:${port}`;
    await using failFast = createChannel({
      target,
      logger: silentLogger,
      serviceConfig: { methodConfig: [{ name: [{}], waitForReady: false }] },
    });
    await using waiting = createChannel({ target, logger: silentLogger });
    const startedAt = performance.now();
    const error = ConnectError.from(
      await createClient(EchoService, failFast)
        .echo({ message: "x" })
        .catch((e) => e),
    );
    expect(error.code).toBe(Code.Unavailable);
    expect(error.message).toContain("transient-failure");
    expect(performance.now() - startedAt).toBeLessThan(3000);
    const waitedFrom = performance.now();
    const waited = ConnectError.from(
      await createClient(EchoService, waiting)
        .echo({ message: "x" }, { timeoutMs: 1500 })
        .catch((e) => e),
    );
    expect(waited.code).toBe(Code.DeadlineExceeded);
    expect(performance.now() - waitedFrom).toBeGreaterThanOrEqual(1400);
  });

  it("a hedgingPolicy hedges its method (even one with side effects) past a slow backend", async () => {
    const [slow, fast] = (await start(["127.0.80.9", "127.0.80.10"])) as [EchoBackend, EchoBackend];
    slow.setDelay(2000);
    await using channel = createChannel({
      target: targetOf(backends),
      balancer: "round-robin",
      logger: silentLogger,
      serviceConfig: {
        methodConfig: [
          { name: [{ service: echo, method: "Echo" }], hedgingPolicy: { maxAttempts: 2, hedgingDelay: "0.05s" } },
        ],
      },
    });
    await allReady(channel);
    const client = createClient(EchoService, channel);
    for (let i = 0; i < 6; i++) {
      const startedAt = performance.now();
      expect((await client.echo({ message: "x" })).server).toBe(fast.address);
      expect(performance.now() - startedAt).toBeLessThan(1000);
    }
    expect(echoCalls(slow)).toBeGreaterThan(0);
  });
});

describe("pick_first", () => {
  it("shuffleAddressList spreads clients that get the same list; without it they all take the first address", async () => {
    await start(["127.0.80.31", "127.0.80.32", "127.0.80.33", "127.0.80.34"]);
    const serverOf = async (shuffleAddressList: boolean) => {
      await using channel = createChannel({
        target: targetOf(backends),
        logger: silentLogger,
        serviceConfig: { loadBalancingConfig: [{ pick_first: { shuffleAddressList } }] },
      });
      return (await createClient(EchoService, channel).echo({ message: "x" })).server;
    };
    const shuffled = new Set<string>();
    const plain = new Set<string>();
    for (let i = 0; i < 8; i++) {
      shuffled.add(await serverOf(true));
      plain.add(await serverOf(false));
    }
    // 8 clients on one of 4 addresses each: all on the same one has a chance of 1 in 16384.
    expect(shuffled.size).toBeGreaterThan(1);
    expect([...plain]).toEqual([backends[0]?.address]);
  });
});
