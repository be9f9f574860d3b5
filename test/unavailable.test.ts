import { Code, type ConnectError, createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { startEchoBackend } from "./support/echo-backend.js";
import { closedPort } from "./support/free-port.js";

describe("no endpoint ready", () => {
  it("fails at the deadline with DEADLINE_EXCEEDED naming the target and the last connection error", async () => {
    const ports = [await closedPort("127.0.0.41"), await closedPort("127.0.0.42")];
    const target = `static:///127.0.0.41:${ports[0]},127.0.0.42:${ports[1]}`;
    await using channel = createChannel({ target, logger: silentLogger });
    const started = performance.now();
    const error = (await createClient(EchoService, channel)
      .echo({ message: "x" }, { timeoutMs: 1500 })
      .catch((e) => e)) as ConnectError;
    const elapsed = performance.now() - started;
    // gRPC: a call waiting for a ready endpoint fails with its deadline's status.
    expect(error.code).toBe(Code.DeadlineExceeded);
    expect(error.rawMessage).toContain(`"${target}"`);
    expect(error.rawMessage).toMatch(/2 transient-failure/);
    expect(error.rawMessage).toContain("ECONNREFUSED");
    expect(elapsed).toBeGreaterThanOrEqual(1400);
    expect(elapsed).toBeLessThan(5000);
  });

  it("without a deadline, waits waitForReadyMs and fails with UNAVAILABLE", async () => {
    const port = await closedPort("127.0.0.43");
    await using channel = createChannel({
      target: `static:///127.0.0.43:${port}`,
      waitForReadyMs: 500,
      logger: silentLogger,
    });
    const started = performance.now();
    const error = (await createClient(EchoService, channel)
      .echo({ message: "x" })
      .catch((e) => e)) as ConnectError;
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toContain("ECONNREFUSED");
    expect(performance.now() - started).toBeGreaterThanOrEqual(450);
  });

  it("waits for an endpoint that comes up before the deadline", async () => {
    const host = "127.0.0.44";
    const port = await closedPort(host);
    await using channel = createChannel({
      target: `static:///${host}:${port}`,
      backoff: { initialMs: 100, maxMs: 200 },
      logger: silentLogger,
    });
    const call = createClient(EchoService, channel).echo({ message: "late" }, { timeoutMs: 15_000 });
    const backend = await startEchoBackend({ host, port });
    try {
      expect((await call).server).toBe(backend.address);
    } finally {
      await backend.close();
    }
  });
});
