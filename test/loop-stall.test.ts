import * as http2 from "node:http2";
import * as net from "node:net";
import { createClient } from "@connectrpc/connect";
import { silentLogger } from "@meshlite/core";
import { createClientSession } from "@meshlite/transport/h2";
import { type ChannelEvent, createChannel } from "meshlite";
import { afterEach, describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { type BackendProcess, startBackendGroup } from "./support/backend-process.js";
import { startLoad } from "./support/load.js";
import { waitFor } from "./support/wait-for.js";

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function blockFor(ms: number) {
  const until = performance.now() + ms;
  while (performance.now() < until) {}
}

/** The prototypes whose ping() a channel's keepalive calls: node:http2's client session and meshlite's own. */
function pingPrototypes(backend: BackendProcess): Array<{ ping: (...args: never[]) => boolean }> {
  const probe = http2.connect(`http://${backend.address}`);
  probe.on("error", () => {});
  const socket = new net.Socket();
  const own = createClientSession(socket, { authority: backend.address });
  own.on("error", () => {});
  const protos = [Object.getPrototypeOf(probe), Object.getPrototypeOf(own)];
  probe.destroy();
  own.destroy();
  socket.destroy();
  return protos;
}

/**
 * Stalls the caller's event loop right after a keepalive PING goes out, the
 * worst moment: the server answers in a millisecond, and the ACK sits unread
 * in the socket while the ping's deadline expires. Whichever HTTP/2 client
 * the channel runs on.
 */
function stallAfterPings(backend: BackendProcess, stalls: number, stallMs: number) {
  let left = stalls;
  let lastStall = 0;
  const state = { done: 0 };
  for (const proto of pingPrototypes(backend)) {
    const original = proto.ping;
    proto.ping = function (this: unknown, ...args: never[]) {
      const sent = original.apply(this, args);
      // One stall per second at most, so calls get through between them.
      if (sent && left > 0 && performance.now() - lastStall > 1000 + stallMs) {
        left--;
        blockFor(stallMs);
        lastStall = performance.now();
        state.done++;
      }
      return sent;
    };
    cleanups.push(() => {
      proto.ping = original;
    });
  }
  return state;
}

describe("the caller's own event loop stalls", () => {
  it("keepalive keeps healthy connections, no call fails, no pod is ejected, estimates stay near the calls' latency", async () => {
    const backends = await startBackendGroup(["127.0.9.1", "127.0.9.2", "127.0.9.3"], { delayMs: 50 });
    cleanups.push(() => backends[0]?.kill());
    const events: ChannelEvent[] = [];
    const channel = createChannel({
      target: `static:///${backends.map((b) => b.address).join(",")}`,
      keepalive: { intervalMs: 300, timeoutMs: 500 },
      logger: silentLogger,
      onEvent: (e) => events.push(e),
    });
    cleanups.push(() => channel.close());
    const client = createClient(EchoService, channel);
    // Not idempotent: a call cut with its connection would fail, not be retried.
    const load = startLoad(() => client.echo({ message: "x" }, { timeoutMs: 30_000 }), {
      concurrency: 6,
      intervalMs: 10,
    });
    await waitFor("calls on every backend", () => load.result.byServer.size === 3 && load.result.ok > 60);
    const warm = events.length;
    // The highest latency estimate of any endpoint, read between the stalls and after them.
    let maxEstimate = 0;
    const poll = setInterval(() => {
      for (const e of channel.snapshot().endpoints) maxEstimate = Math.max(maxEstimate, e.latencyMs);
    }, 10);
    cleanups.push(() => clearInterval(poll));
    const stalled = stallAfterPings(backends[0] as BackendProcess, 3, 1500);
    await waitFor("three stalls", () => stalled.done === 3, { timeoutMs: 30_000 });
    load.mark();
    await waitFor("60 calls after the stalls", () => [...load.since().values()].reduce((a, b) => a + b, 0) >= 60);
    const result = await load.stop();

    expect(result.errors).toEqual([]);
    const after = events.slice(warm);
    expect(after.filter((e) => e.type === "endpoint-ejected")).toEqual([]);
    // No connection was condemned: every endpoint stayed ready throughout.
    expect(after.filter((e) => e.type === "endpoint-state")).toEqual([]);
    const snapshot = channel.snapshot();
    expect(snapshot.eventLoop.stalls).toBeGreaterThanOrEqual(3);
    expect(snapshot.eventLoop.maxStallMs).toBeGreaterThan(1000);
    // The calls take ~50 ms (more on a busy machine); without leaving out
    // the samples that spanned a 1.5 s stall, estimates reach 600 ms and more.
    expect(maxEstimate).toBeLessThan(400);
  }, 60_000);
});
