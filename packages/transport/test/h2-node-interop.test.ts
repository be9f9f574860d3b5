import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createFlowControl, type FlowWindow } from "../src/h2/flow-control.js";
import { createFrameReader } from "../src/h2/frame-reader.js";
import { FrameType, SettingId } from "../src/h2/frame-types.js";
import { createFrameWriter } from "../src/h2/frame-writer.js";
import { createHpackDecoder } from "../src/h2/hpack-decoder.js";
import { createHpackEncoder } from "../src/h2/hpack-encoder.js";
import { type Cleanups, listenLoopback } from "./support/loopback-server.js";

const host = "127.0.0.1";
const cleanups: Cleanups = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A TCP server on loopback that hands each connection to `onSocket`. */
const listen = (onSocket: (socket: net.Socket) => void) => listenLoopback(onSocket, cleanups);

function connect(port: number): http2.ClientHttp2Session {
  const client = http2.connect(`http://${host}:${port}`);
  client.on("error", () => {}); // asserted through the requests
  cleanups.push(() => {
    client.destroy();
  });
  return client;
}

const pairs = (fields: string[]) => {
  const out: [string, string][] = [];
  for (let i = 0; i < fields.length; i += 2) out.push([fields[i]!, fields[i + 1]!]);
  return out;
};

interface Call {
  streamId: number;
  /** HPACK-coded size of the request's header block. */
  blockLength?: number;
  headers: [string, string][];
  body: Buffer;
}

describe("frames and HPACK against a real node:http2 peer", () => {
  it("parse what a node:http2 client sends: preface, SETTINGS, HEADERS (Huffman, dynamic table) and DATA", async () => {
    const calls: Call[] = [];
    let done: () => void;
    const twoCalls = new Promise<void>((resolve) => {
      done = resolve;
    });
    const port = await listen((socket) => {
      const reader = createFrameReader({ preface: true });
      const decoder = createHpackDecoder();
      const writer = createFrameWriter();
      const flow = createFlowControl();
      const open = new Map<number, Call & { window: FlowWindow }>();
      writer.settings([]);
      writer.windowUpdate(0, flow.initialConnectionIncrement);
      socket.write(writer.take()!);
      socket.on("data", (chunk: Buffer) => {
        reader.push(chunk);
        for (let t = reader.next(); t !== -1; t = reader.next()) {
          if (t === FrameType.SETTINGS && !reader.ack) writer.settingsAck();
          if (t === FrameType.HEADERS) {
            open.set(reader.streamId, {
              streamId: reader.streamId,
              blockLength: reader.payload.length,
              headers: pairs(decoder.decode(reader.payload)),
              body: Buffer.alloc(0),
              window: flow.openStream(),
            });
          }
          if (t === FrameType.DATA) {
            const call = open.get(reader.streamId)!;
            flow.received(call.window, reader.streamId, reader.length);
            call.body = Buffer.concat([call.body, reader.payload]);
            // Read at once: hand the window back as the policy says.
            const inc = flow.releaseStream(call.window, reader.length);
            if (inc > 0 && !reader.endStream) writer.windowUpdate(reader.streamId, inc);
            const connInc = flow.releaseConnection(reader.length);
            if (connInc > 0) writer.windowUpdate(0, connInc);
            if (reader.endStream) {
              calls.push({
                streamId: call.streamId,
                blockLength: call.blockLength,
                headers: call.headers,
                body: call.body,
              });
              if (calls.length === 2) done();
            }
          }
        }
        const out = writer.take();
        if (out) socket.write(out);
      });
    });
    const client = connect(port);
    // More than one DATA frame, and more than a stream's initial window: needs our WINDOW_UPDATEs.
    const body = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));
    const metadata = {
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": "5S",
      "x-tenant": "acme",
      "x-trace-bin": Buffer.from([0, 1, 2, 255]).toString("base64"),
    };
    for (const n of [1, 2]) {
      const req = client.request({
        ":method": "POST",
        ":path": "/pkg.Service/Method",
        "x-call": String(n),
        ...metadata,
      });
      req.on("error", () => {});
      req.end(body);
    }
    await twoCalls;
    calls.sort((a, b) => a.streamId - b.streamId); // the two bodies interleave: either may end first
    expect(calls.map((c) => c.streamId)).toEqual([1, 3]);
    // The second request's fields came mostly as indices into the dynamic table the first one filled.
    expect(calls[1]!.blockLength!).toBeLessThan(calls[0]!.blockLength! / 2);
    for (const [i, call] of calls.entries()) {
      const h = new Map(call.headers);
      expect(h.get(":method")).toBe("POST");
      expect(h.get(":path")).toBe("/pkg.Service/Method");
      expect(h.get(":scheme")).toBe("http");
      expect(h.get(":authority")).toBe(`${host}:${port}`);
      expect(h.get("x-call")).toBe(String(i + 1));
      for (const [k, v] of Object.entries(metadata)) expect(h.get(k)).toBe(v);
      expect(call.body.equals(body)).toBe(true);
    }
  });

  it("a node:http2 client receives the response, body and trailers our writer and encoder send", async () => {
    const port = await listen((socket) => {
      const reader = createFrameReader({ preface: true });
      const decoder = createHpackDecoder();
      const encoder = createHpackEncoder();
      const writer = createFrameWriter();
      writer.settings([SettingId.MAX_CONCURRENT_STREAMS, 100, SettingId.ENABLE_PUSH, 0]);
      socket.write(writer.take()!);
      socket.on("data", (chunk: Buffer) => {
        reader.push(chunk);
        for (let t = reader.next(); t !== -1; t = reader.next()) {
          if (t === FrameType.SETTINGS && !reader.ack) writer.settingsAck();
          if (t === FrameType.HEADERS) {
            const h = new Map(pairs(decoder.decode(reader.payload)));
            const id = reader.streamId;
            // Response headers, a body over one frame, trailers: one socket write.
            writer.headers(
              id,
              encoder.encode([":status", "200", "content-type", "application/grpc", "x-echo-path", h.get(":path")!]),
              false,
            );
            writer.data(id, Buffer.alloc(30000, id), false);
            writer.headers(
              id,
              encoder.encode(["grpc-status", "0", "grpc-message", `done ${id}`, "x-bytes-bin", "AAEC/w=="]),
              true,
            );
          }
        }
        const out = writer.take();
        if (out) socket.write(out);
      });
    });
    const client = connect(port);
    for (const path of ["/pkg.Service/First", "/pkg.Service/Second"]) {
      const req = client.request({ ":method": "POST", ":path": path, "content-type": "application/grpc" });
      req.end();
      const [headers] = (await once(req, "response")) as [http2.IncomingHttpHeaders];
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) => req.on("trailers", resolve));
      await once(req, "end");
      expect(headers[":status"]).toBe(200);
      expect(headers["content-type"]).toBe("application/grpc");
      expect(headers["x-echo-path"]).toBe(path);
      const body = Buffer.concat(chunks);
      expect(body.length).toBe(30000);
      expect(body.every((b) => b === req.id)).toBe(true);
      const t = await trailers;
      expect(t["grpc-status"]).toBe("0");
      expect(t["grpc-message"]).toBe(`done ${req.id}`);
      expect(t["x-bytes-bin"]).toBe("AAEC/w==");
    }
  });

  it("as the client of a real node:http2 server: our preface, SETTINGS, HEADERS and DATA; its response, body and trailers parsed", async () => {
    const server = http2.createServer();
    server.on("stream", (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        stream.respond(
          { ":status": 200, "content-type": "application/grpc", "x-path": String(headers[":path"]) },
          {
            waitForTrailers: true,
          },
        );
        stream.on("wantTrailers", () =>
          stream.sendTrailers({ "grpc-status": "0", "grpc-message": `got ${Buffer.concat(chunks).length} bytes` }),
        );
        stream.end(Buffer.concat(chunks).subarray(0, 1000));
      });
    });
    server.listen(0, host);
    await once(server, "listening");
    cleanups.push(async () => {
      server.close();
      await once(server, "close");
    });
    const socket = net.connect((server.address() as net.AddressInfo).port, host);
    socket.on("error", () => {});
    cleanups.push(() => {
      socket.destroy();
    });
    const reader = createFrameReader();
    const decoder = createHpackDecoder();
    const encoder = createHpackEncoder();
    const writer = createFrameWriter();
    const flow = createFlowControl();
    const body = Buffer.alloc(50_000, 3);
    writer.preface();
    writer.settings([SettingId.ENABLE_PUSH, 0]);
    const request = [":method", "POST", ":scheme", "http", ":path", "/pkg.Service/Up", ":authority", "backend"];
    writer.headers(1, encoder.encode([...request, "content-type", "application/grpc", "te", "trailers"]), false);
    const stream = flow.openStream();
    // 50 000 bytes fit in the initial 65 535 windows: no wait for WINDOW_UPDATE.
    expect(flow.sendable(stream)).toBeGreaterThanOrEqual(body.length);
    writer.data(1, body, true);
    flow.sent(stream, body.length);
    socket.write(writer.take()!);

    const seen: { headers: [string, string][][]; data: Buffer[]; acked: boolean } = {
      headers: [],
      data: [],
      acked: false,
    };
    await new Promise<void>((resolve, reject) => {
      socket.on("data", (chunk: Buffer) => {
        reader.push(chunk);
        try {
          for (let t = reader.next(); t !== -1; t = reader.next()) {
            if (t === FrameType.SETTINGS) {
              if (reader.ack) seen.acked = true;
              else writer.settingsAck();
            }
            if (t === FrameType.WINDOW_UPDATE)
              flow.credit(reader.streamId ? stream : undefined, reader.streamId, reader.windowIncrement);
            if (t === FrameType.HEADERS) seen.headers.push(pairs(decoder.decode(reader.payload)));
            if (t === FrameType.DATA) seen.data.push(Buffer.from(reader.payload));
            if ((t === FrameType.HEADERS || t === FrameType.DATA) && reader.endStream) resolve();
          }
        } catch (e) {
          reject(e);
        }
        const out = writer.take();
        if (out) socket.write(out);
      });
    });
    expect(seen.acked).toBe(true); // the server acked our SETTINGS
    expect(seen.headers).toHaveLength(2);
    const response = new Map(seen.headers[0]);
    expect(response.get(":status")).toBe("200");
    expect(response.get("content-type")).toBe("application/grpc");
    expect(response.get("x-path")).toBe("/pkg.Service/Up");
    expect(Buffer.concat(seen.data).equals(body.subarray(0, 1000))).toBe(true);
    const trailers = new Map(seen.headers[1]);
    expect(trailers.get("grpc-status")).toBe("0");
    expect(trailers.get("grpc-message")).toBe("got 50000 bytes");
  });
});
