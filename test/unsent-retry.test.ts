import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type EchoBackend, startEchoBackend } from "./support/echo-backend.js";
import { startRawGoawayServer } from "./support/raw-h2-server.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function* messages(...texts: string[]) {
  for (const message of texts) yield { message };
}

async function startRefusingServer(host: string) {
  let streams = 0;
  const server = http2.createServer();
  server.on("stream", (stream) => {
    streams++;
    stream.on("error", () => {});
    stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { address: `${host}:${port}`, streams: () => streams };
}

async function healthy(host: string): Promise<EchoBackend> {
  const backend = await startEchoBackend({ host });
  cleanups.push(() => backend.close());
  return backend;
}

describe("calls that never reached a server", () => {
  it("are retried on another endpoint after REFUSED_STREAM, for every call kind", async () => {
    const refusing = await startRefusingServer("127.0.0.31");
    const good = await healthy("127.0.0.32");
    await using channel = createChannel({
      target: `static:///${refusing.address},${good.address}`,
      balancer: "round-robin",
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    for (let i = 0; i < 10; i++) {
      expect((await client.echo({ message: "x" })).server).toBe(good.address);
    }
    expect((await client.clientStream(messages("a", "b"))).message).toBe("a,b");
    const streamed: string[] = [];
    for await (const m of client.bidi(messages("p", "q"))) streamed.push(m.message);
    expect(streamed).toEqual(["p", "q"]);
    const served: number[] = [];
    for await (const m of client.serverStream({ count: 2 })) served.push(m.index);
    expect(served).toEqual([0, 1]);
    // Round-robin sent about half of the first attempts to the refusing server.
    expect(refusing.streams()).toBeGreaterThanOrEqual(5);
    expect(good.calls.get("Echo")).toBe(10);
  });

  it("are retried on another endpoint when GOAWAY says the stream was not processed", async () => {
    const goaway = await startRawGoawayServer("127.0.0.33");
    cleanups.push(() => goaway.close());
    const good = await healthy("127.0.0.34");
    await using channel = createChannel({
      target: `static:///${goaway.address},${good.address}`,
      balancer: "round-robin",
      logger: silentLogger,
    });
    const client = createClient(EchoService, channel);
    for (let i = 0; i < 6; i++) {
      expect((await client.echo({ message: "x" }, { timeoutMs: 10_000 })).server).toBe(good.address);
    }
    expect(goaway.streams()).toBeGreaterThan(0);
  });

  it("fail with UNAVAILABLE when the only endpoint keeps refusing", async () => {
    const refusing = await startRefusingServer("127.0.0.35");
    await using channel = createChannel({ target: `static:///${refusing.address}`, logger: silentLogger });
    const error = await createClient(EchoService, channel)
      .echo({ message: "x" })
      .catch((e) => e);
    expect(error.code).toBe(14);
    expect(error.rawMessage).toContain("was not sent");
    expect(error.rawMessage).toContain("REFUSED_STREAM");
    // The first attempt and 4 resends.
    expect(refusing.streams()).toBe(5);
  });
});
