// A hostile HTTP/2 client in its own process, for bench/hostile-clients.ts:
// `attacker-main.ts HOST PORT KIND [NICE] [FROM]` repeats one attack until
// killed, reconnecting at once whenever the proxy cuts it off or refuses it,
// at CPU priority NICE (default 0), from the local address FROM (default: the
// system's choice; the proxy refuses a cut-off address for a while, and a
// legit client on 127.0.0.1 must not share it). Sends { type: "ready" } once
// it starts, and { type: "stats", connections, steps } when asked (steps:
// frames, or requests, it wrote).
import * as net from "node:net";
import { setPriority } from "node:os";
import { create, toBinary } from "@bufbuild/protobuf";
import { EchoRequestSchema } from "../../gen/meshlite/echo/v1/echo_pb.js";
import {
  closedBeforeHandshake,
  connectRawH2,
  envelope,
  frames,
  headerBlock,
  type RawH2Client,
} from "../../test/support/raw-h2-client.js";

export const attackKinds = [
  "rapid-reset",
  "continuation",
  "ping",
  "settings",
  "slowloris",
  "no-end",
  "slow-reader",
] as const;
export type AttackKind = (typeof attackKinds)[number];

const [host = "127.0.0.1", portText = "0", kind = "rapid-reset", niceText = "0", from] = process.argv.slice(2);
const localAddress = from ? { localAddress: from } : {};
const port = Number(portText);
setPriority(Number(niceText));
const path = "/meshlite.echo.v1.EchoService/EchoIdempotent";
const body = (message = "x", count = 0) =>
  envelope(Buffer.from(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message, count }))));
const turn = () => new Promise((r) => setImmediate(r));
let connections = 0;
let steps = 0;

async function flood(c: RawH2Client, step: (i: number) => void, every: number) {
  for (let i = 0; !c.received.closed; i++) {
    step(i);
    steps++;
    if (i % every === every - 1) await turn();
    // Stream ids run out at 2^31: start over on a new connection.
    if (i > 1_000_000) break;
  }
}

async function once(): Promise<void> {
  connections++;
  if (kind === "slowloris") {
    // 50 connections that never send anything, replaced as the proxy drops them.
    const sockets = Array.from({ length: 50 }, () => {
      const s = net.connect({ host, port, ...localAddress });
      s.on("error", () => {});
      s.resume();
      return new Promise<void>((resolve) => s.once("close", () => resolve()));
    });
    connections += 49;
    await Promise.all(sockets);
    return;
  }
  const c = await connectRawH2(host, port, {
    ...localAddress,
    ...(kind === "slow-reader" ? { settings: [[4, 0]] } : {}),
  });
  const block = headerBlock([["x-flood", "y".repeat(100)]]);
  switch (kind) {
    case "rapid-reset":
      await flood(
        c,
        (i) => {
          const id = 1 + 2 * i;
          c.write(Buffer.concat([c.requestHeaders(id, { path }), frames.data(id, body(), true), frames.rst(id)]));
        },
        50,
      );
      break;
    case "continuation":
      c.write(c.requestHeaders(1, { path, endHeaders: false }));
      await flood(c, () => c.write(frames.continuation(1, block)), 200);
      break;
    case "ping":
      await flood(c, () => c.write(frames.ping()), 20);
      break;
    case "settings":
      await flood(c, () => c.write(frames.settings([[4, 65_535]])), 20);
      break;
    case "no-end":
      // 100 calls that never end their request, on one connection, until the proxy lets them go.
      for (let i = 0; i < 100; i++) {
        const id = 1 + 2 * i;
        c.write(c.requestHeaders(id, { path: "/meshlite.echo.v1.EchoService/ClientStream" }));
        c.write(frames.data(id, body("part")));
      }
      break;
    case "slow-reader":
      // Server streams of 8 KB messages that it never reads.
      for (let i = 0; i < 20; i++) {
        const id = 1 + 2 * i;
        c.write(c.requestHeaders(id, { path: "/meshlite.echo.v1.EchoService/ServerStream" }));
        c.write(frames.data(id, body("m".repeat(8192), 100_000), true));
      }
      break;
  }
  if (kind === "no-end" || kind === "slow-reader") {
    // Until the proxy has let every stream go (stream idle timeout), then again on a new connection.
    const streams = kind === "no-end" ? 100 : 20;
    while (!c.received.closed && c.received.resets.size < streams) await new Promise((r) => setTimeout(r, 50));
    c.destroy();
    return;
  }
  await c.waitClosed(600_000);
}

process.on("message", (m: { type: string }) => {
  if (m.type === "stats") process.send?.({ type: "stats", connections, steps });
});
// The bench gone (killed, crashed): stop too, rather than attack a port forever.
process.on("disconnect", () => process.exit(0));
process.send?.({ type: "ready" });
for (;;) {
  // A connection closed before the handshake (the proxy refusing this address)
  // is retried at once, as an attacker would; any other failure (the proxy
  // gone, a bad FROM address) after a pause, not in a tight loop.
  await once().catch((e: Error & { code?: string }) =>
    e.code === closedBeforeHandshake ? undefined : new Promise((r) => setTimeout(r, 100)),
  );
}
