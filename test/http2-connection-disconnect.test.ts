// Http2Connection.disconnect(): what the subset policy lets an endpoint go with (issue 15).
import { createClient } from "@connectrpc/connect";
import { createHttp2Connection, createLeanGrpcTransport } from "@meshlite/transport";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { waitFor } from "./support/wait-for.js";

describe("Http2Connection.disconnect()", () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  it("lets a call in flight finish, goes idle without re-dialling, and connects again on connect()", async () => {
    const backend: EchoBackend = await startEchoBackend({ host: "127.0.71.200" });
    cleanup.push(() => backend.close());
    const connection = createHttp2Connection({
      origin: `http://echo.test:${backend.port}`,
      address: { host: backend.host, port: backend.port },
    });
    cleanup.push(() => connection.close({ destroy: true }));
    const states: string[] = [];
    connection.subscribe((e) => {
      if (e.type === "state") states.push(e.state);
    });
    const client = createClient(
      EchoService,
      createLeanGrpcTransport({ baseUrl: connection.authority, sessionManager: connection }),
    );
    connection.connect();
    await waitFor("ready", () => connection.state() === "ready");
    const slow = client.echo({ message: "in flight", delayMs: 300 });
    await waitFor("the call in flight at the backend", () => backend.inFlight() === 1);
    connection.disconnect();
    expect(connection.state()).toBe("idle");
    expect((await slow).message).toBe("in flight");
    // No re-dial while let go: nothing to wait for but time (an event that does not come).
    await new Promise((r) => setTimeout(r, 200));
    expect(connection.state()).toBe("idle");
    expect(connection.connectionCount()).toBe(0);
    connection.connect();
    await waitFor("ready again", () => connection.state() === "ready");
    expect((await client.echo({ message: "again" })).message).toBe("again");
    expect(states).toEqual(["connecting", "ready", "idle", "connecting", "ready"]);
  });
});
