import { once } from "node:events";
import http2 from "node:http2";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../../test/support/wait-for.js";
import { readableBody } from "../src/request-body.js";
import { recordingSink } from "./support/recording-sink.js";

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A few turns of the event loop: a Readable's resume() and our deliveries happen on the next tick. */
async function turns(n = 3) {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/** A node:http2 server on loopback handing each request stream to `onStream`, and a client of it. */
async function h2Pair(onStream: (stream: http2.ServerHttp2Stream) => void) {
  const server = http2.createServer();
  server.on("stream", onStream);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on("error", () => {});
  cleanups.push(async () => {
    client.destroy();
    server.close();
    await once(server, "close");
  });
  return client;
}

describe("readableBody (node:http2 and HTTP/1.1 request bodies)", () => {
  it("reports the end of a stream that ended before deliverTo, after resume() and on a later tick", async () => {
    let stream: http2.ServerHttp2Stream | undefined;
    const client = await h2Pair((s) => {
      // As the front server does: the call is taken up a turn later.
      setImmediate(() => {
        stream = s;
      });
    });
    const req = client.request({ ":method": "POST", ":path": "/" });
    req.on("error", () => {});
    req.end();
    await waitFor("the stream", () => stream);
    expect(stream!.readableEnded).toBe(true);
    const { got, sink, call } = recordingSink();
    const body = readableBody(stream!);
    call(() => body.deliverTo(sink));
    await turns();
    expect(got.ended).toBe(false); // paused until resume()
    call(() => body.resume());
    expect(got.ended).toBe(false);
    call(() => body.pause());
    await turns();
    expect(got.ended).toBe(false); // paused again before its tick
    call(() => body.resume());
    await waitFor("the end", () => got.ended);
    expect(got.chunks).toEqual([]);
    expect(got.reentered).toBe(false);
    stream!.respond({ ":status": 200 }, { endStream: true });
  });

  it("delivers nothing while paused, then the chunks in order and the end, never from inside its calls", async () => {
    const readable = new PassThrough();
    const body = readableBody(readable);
    const { got, sink, call } = recordingSink();
    call(() => body.deliverTo(sink));
    readable.write("one");
    await turns();
    expect(got.chunks).toEqual([]);
    call(() => body.resume());
    expect(got.chunks).toEqual([]);
    await waitFor("the first chunk", () => got.chunks.length === 1);
    call(() => body.pause());
    readable.write("two");
    readable.end("three");
    await turns();
    expect(got.chunks.map(String)).toEqual(["one"]);
    expect(got.ended).toBe(false);
    call(() => body.resume());
    await waitFor("the end", () => got.ended);
    expect(Buffer.concat(got.chunks).toString()).toBe("onetwothree");
    expect(got.reentered).toBe(false);
  });

  it("discard() reads the rest to its end, paused or not, and the sink hears nothing more", async () => {
    // 1 MiB over node:http2's default windows of 64 KiB: it reaches its end only if reading credits the client.
    const upload = Buffer.alloc(1024 * 1024, 1);
    const streams: http2.ServerHttp2Stream[] = [];
    const client = await h2Pair((s) => streams.push(s));
    const requests = [0, 1].map(() => {
      const req = client.request({ ":method": "POST", ":path": "/" });
      req.on("error", () => {});
      req.end(upload);
      return req;
    });
    await waitFor("both streams", () => streams.length === 2);
    // One taken up and paused with a sink (a call that failed), one discarded at once (a call not admitted).
    const { got, sink } = recordingSink();
    const taken = readableBody(streams[0]!);
    taken.deliverTo(sink);
    await waitFor("the first stream held back", () => streams[0]!.readableLength > 0);
    taken.discard();
    readableBody(streams[1]!).discard();
    await waitFor("both read to their end", () => streams.every((s) => s.readableEnded));
    expect(got.chunks).toEqual([]);
    expect(got.ended).toBe(false);
    for (const s of streams) s.respond({ ":status": 200 }, { endStream: true });
    await Promise.all(requests.map((r) => once(r, "close")));
  });
});
