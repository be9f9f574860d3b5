import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../../test/support/wait-for.js";
import type { ClientSession } from "../src/h2/client-session.js";
import { FrameType } from "../src/h2/frame-types.js";
import { ErrorCode, H2Error } from "../src/h2/h2-error.js";
import { collect, openSession } from "./support/client-session-peers.js";
import type { Cleanups } from "./support/loopback-server.js";
import { type ClientFrame, type RawConnection, startRawServer } from "./support/raw-h2-server.js";

const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const post = { ":method": "POST", ":path": "/pkg.Service/Method", "content-type": "application/grpc" };
const ok = [":status", "200", "content-type", "application/grpc"];

/** A raw server that answers each request HEADERS with `answer(connection, streamId, path)`. */
async function serve(answer: (c: RawConnection, streamId: number, path: string) => void) {
  return startRawServer(cleanups, (c, f: ClientFrame) => {
    if (f.type !== FrameType.HEADERS) return;
    const path = f.fields![f.fields!.indexOf(":path") + 1]!;
    answer(c, f.streamId, path);
    c.flush();
  });
}

/** A request that sends a body and ends; resolves with what the stream told its consumer. */
function call(session: ClientSession, path = post[":path"]) {
  const stream = session.request({ ...post, ":path": path });
  const c = collect(stream);
  stream.end(Buffer.from("request"));
  return c;
}

/** Resolves at the session's "close" (events.once would reject on its "error" before it). */
function closeOf(session: ClientSession): Promise<void> {
  return new Promise((resolve) => session.once("close", () => resolve()));
}

/** A good answer, to show the connection still works. */
function goodAnswer(c: RawConnection, id: number) {
  c.writer.headers(id, c.block(ok), false);
  c.writer.data(id, Buffer.from("fine"), false);
  c.writer.headers(id, c.block(["grpc-status", "0"]), true);
}

describe("h2 client session against a hostile server", () => {
  it("answers DATA on stream 0 with GOAWAY PROTOCOL_ERROR; the streams close with the error", async () => {
    const { port, connections } = await serve((c, id) => {
      c.writer.headers(id, c.block(ok), false);
      c.writer.data(0, Buffer.from("nowhere"), false);
    });
    const { session, errors } = await openSession(cleanups, port);
    const closed = closeOf(session);
    const c = call(session);
    const outcome = await c.closed;
    expect(outcome.connectionLost).toBe(true);
    expect(outcome.error?.message).toMatch(/DATA on stream 0/);
    await closed;
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(H2Error);
    const goaway = connections[0]!.frames.find((f) => f.type === FrameType.GOAWAY);
    expect(goaway?.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(c.violations).toEqual([]);
    expect(() => session.request(post)).toThrow();
  });

  it("resets a stream whose response is malformed; the connection goes on", async () => {
    const answers: Record<string, (c: RawConnection, id: number) => void> = {
      "/upper": (c, id) => c.writer.headers(id, c.block([":status", "200", "X-Upper", "1"]), true),
      "/no-status": (c, id) => c.writer.headers(id, c.block(["content-type", "application/grpc"]), true),
      "/data-first": (c, id) => c.writer.data(id, Buffer.from("early"), false),
      "/open-trailers": (c, id) => {
        c.writer.headers(id, c.block(ok), false);
        c.writer.headers(id, c.block(["grpc-status", "0"]), false);
      },
      "/pseudo-trailer": (c, id) => {
        c.writer.headers(id, c.block(ok), false);
        c.writer.headers(id, c.block([":status", "200"]), true);
      },
      "/connection-header": (c, id) => c.writer.headers(id, c.block([":status", "200", "connection", "close"]), true),
      "/informational-end": (c, id) => c.writer.headers(id, c.block([":status", "103"]), true),
    };
    const { port, connections } = await serve((c, id, path) => (answers[path] ?? goodAnswer)(c, id));
    const { session, errors } = await openSession(cleanups, port);
    for (const path of Object.keys(answers)) {
      const c = call(session, path);
      const outcome = await c.closed;
      expect(outcome.rstCode, path).toBe(ErrorCode.PROTOCOL_ERROR);
      expect(outcome.error, path).toBeInstanceOf(H2Error);
      expect(outcome.connectionLost).toBe(false);
      expect(c.violations).toEqual([]);
      expect(c.order.at(-1)).toBe("close");
      const id = connections[0]!.frames.filter((f) => f.type === FrameType.HEADERS).at(-1)!.streamId;
      await waitFor(`our RST_STREAM for ${path}`, () => connections[0]!.count(FrameType.RST_STREAM, id) === 1);
    }
    const good = call(session, "/good");
    expect((await good.closed).rstCode).toBe(0);
    expect(good.body().toString()).toBe("fine");
    expect(errors).toEqual([]);
    expect(connections[0]!.count(FrameType.GOAWAY)).toBe(0);
  });

  it("skips a 1xx informational response", async () => {
    const { port } = await serve((c, id) => {
      c.writer.headers(id, c.block([":status", "103", "link", "</style.css>"]), false);
      goodAnswer(c, id);
    });
    const { session } = await openSession(cleanups, port);
    const c = call(session);
    expect((await c.closed).rstCode).toBe(0);
    expect(c.headers?.[":status"]).toBe(200);
    expect(c.headers?.link).toBeUndefined();
    expect(c.order.filter((e) => e === "response")).toHaveLength(1);
  });

  it("resets a stream with FLOW_CONTROL_ERROR when DATA overruns its window", async () => {
    const { port, connections } = await serve((c, id) => {
      c.writer.headers(id, c.block(ok), false);
      for (let i = 0; i < 5; i++) c.writer.data(id, Buffer.alloc(15000), false);
    });
    const { session } = await openSession(cleanups, port, { initialWindowSize: 65535 });
    const stream = session.request(post);
    // Pause, so none of it is handed back as credit.
    const c = collect(stream, { response: () => stream.pause() });
    stream.end();
    const outcome = await c.closed;
    expect(outcome.rstCode).toBe(ErrorCode.FLOW_CONTROL_ERROR);
    await waitFor("our RST_STREAM", () => connections[0]!.count(FrameType.RST_STREAM, 1) === 1);
    expect(connections[0]!.count(FrameType.GOAWAY)).toBe(0);
  });

  it("ends the connection when the server's first frame is not SETTINGS", async () => {
    const { port, connections } = await startRawServer(cleanups, () => {}, {
      settingsFirst: false,
      onConnection(c) {
        c.writer.ping(Buffer.alloc(8), false);
        c.flush();
      },
    });
    const { session, errors } = await openSession(cleanups, port);
    await waitFor("the session to close", () => session.destroyed);
    await waitFor("its error", () => errors.length > 0);
    expect(errors[0]?.message).toMatch(/before the server's SETTINGS/);
    expect(connections[0]!.frames.find((f) => f.type === FrameType.GOAWAY)?.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(session.connecting).toBe(true);
  });

  it("ends the connection with GOAWAY SETTINGS_TIMEOUT when the server never acknowledges our SETTINGS", async () => {
    const { port, connections } = await startRawServer(cleanups, () => {}, { ackSettings: false });
    const { session, errors } = await openSession(cleanups, port, { settingsTimeoutMs: 200 });
    const closed = closeOf(session);
    const c = call(session);
    expect((await c.closed).connectionLost).toBe(true);
    await closed;
    expect(errors[0]?.message).toMatch(/did not acknowledge our SETTINGS within 200 ms/);
    expect(connections[0]!.frames.find((f) => f.type === FrameType.GOAWAY)?.errorCode).toBe(ErrorCode.SETTINGS_TIMEOUT);
  });

  it("keeps a connection whose server acknowledges our SETTINGS past the SETTINGS timeout", async () => {
    const { port } = await serve(goodAnswer);
    const { session, errors } = await openSession(cleanups, port, { settingsTimeoutMs: 100 });
    expect((await call(session).closed).error).toBeUndefined();
    // Past the timeout (the call above took a round trip; this one starts later still).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await call(session).closed).error).toBeUndefined();
    expect(session.destroyed).toBe(false);
    expect(errors).toEqual([]);
  });

  it("ends the connection on HEADERS for a stream the server may not open", async () => {
    const { port } = await serve((c) => {
      c.writer.headers(2, c.block(ok), true);
    });
    const { session, errors } = await openSession(cleanups, port);
    const closed = closeOf(session);
    const c = call(session);
    expect((await c.closed).connectionLost).toBe(true);
    await closed;
    expect(errors[0]?.message).toMatch(/idle stream 2/);
  });

  it("on GOAWAY with an error: streams above its last id are not sent, those under it lost", async () => {
    const { port } = await serve((c, id) => {
      if (id < 3) return;
      c.writer.goaway(1, ErrorCode.INTERNAL_ERROR);
    });
    const { session, errors } = await openSession(cleanups, port);
    const first = call(session);
    const second = call(session);
    const goaway = once(session, "goaway");
    const closed = closeOf(session);
    expect(await goaway).toEqual([ErrorCode.INTERNAL_ERROR, 1]);
    expect((await second.closed).notSent).toBe(true);
    const lost = await first.closed;
    expect(lost.connectionLost).toBe(true);
    expect(lost.notSent).toBe(false);
    expect(lost.rstCode).toBe(ErrorCode.INTERNAL_ERROR);
    await closed;
    expect(errors[0]?.message).toMatch(/GOAWAY with HTTP\/2 code 2/);
  });

  it("keeps under the server's RST_STREAM limit: past the budget a cancelled stream is ended, reset later", async () => {
    const { port, connections } = await startRawServer(cleanups, () => {});
    const { session } = await openSession(cleanups, port);
    const n = 520;
    const calls = Array.from({ length: n }, () => {
      const stream = session.request(post);
      return { stream, c: collect(stream) };
    });
    const raw = () => connections[0]!;
    await waitFor("the server to see every stream", () => raw().count(FrameType.HEADERS) === n);
    for (const { stream } of calls) stream.cancel();
    // Every consumer is done at once, whether its reset went out or was deferred.
    const outcomes = await Promise.all(calls.map(({ c }) => c.closed));
    expect(outcomes.every((o) => o.rstCode === ErrorCode.CANCEL && !o.notSent)).toBe(true);
    await waitFor("the resets and ends", () => raw().count(FrameType.RST_STREAM) + raw().count(FrameType.DATA) >= n);
    const resets = raw().count(FrameType.RST_STREAM);
    expect(resets).toBeGreaterThanOrEqual(500);
    expect(resets).toBeLessThan(n);
    // The deferred ones ended their request instead (an empty DATA with END_STREAM).
    const ended = raw().frames.filter((f) => f.type === FrameType.DATA && f.endStream).length;
    expect(ended).toBe(n - resets);
    // The server ends one of them; the others are reset as budget comes back (20 a second).
    const deferred = raw()
      .frames.filter((f) => f.type === FrameType.DATA && f.endStream)
      .at(-1)!.streamId;
    raw().writer.headers(deferred, raw().block(ok), true);
    raw().flush();
    await waitFor("a deferred reset", () => raw().count(FrameType.RST_STREAM) > resets);
    await waitFor("every stream to be let go", () => session.openStreams === 0, { timeoutMs: 30_000 });
    expect(raw().count(FrameType.RST_STREAM, deferred)).toBe(0);
  });
});
