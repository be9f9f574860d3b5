// Flow control through meshlite-proxy under stress (issue 19): a 64 MiB
// server stream to a slow reader and a 64 MiB client stream to a slow server
// pass intact (SHA-256 over every body byte), and the proxy holds the fast
// side back instead of buffering: the bytes sent but not yet read stay within
// a bound set by the HTTP/2 windows, far below the 64 MiB. The proxy runs as
// its own process, as in production; its peak RSS is reported.
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ProxyProcess, startProxyProcess } from "./support/proxy-process.js";
import { waitFor } from "./support/wait-for.js";

// Address block 127.0.140.x: the proxy on .1, the backend on .2.
const total = 64 * 1024 * 1024;
const messageSize = 64 * 1024;
/** Read (or write) this much, then pause: a reader (or server) far slower than loopback. */
const burst = 512 * 1024;
const pauseMs = 20;
/**
 * The most that may be in flight between the writer and the slow reader: the
 * windows on both legs (the proxy's 4 MiB per stream upstream, 64 KiB to
 * 4 MiB towards the client), the peers' write buffers and the sockets'. An
 * engine that buffered instead of holding the writer back would approach
 * the 64 MiB.
 */
const maxAhead = 16 * 1024 * 1024;

let backend: http2.Http2Server;
let proxy: ProxyProcess;
let body: Buffer;
let bodyHash: string;

/** The whole body as gRPC messages of messageSize (5-byte prefix each). */
function framed(data: Buffer): Buffer[] {
  const messages: Buffer[] = [];
  for (let at = 0; at < data.length; at += messageSize) {
    const payload = data.subarray(at, at + messageSize);
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(payload.length, 1);
    messages.push(prefix, payload);
  }
  return messages;
}
const framedSize = (size: number) => size + 5 * Math.ceil(size / messageSize);

/** Writes the chunks honouring backpressure; `sent` counts what the stream took (write callbacks). */
async function writeAll(stream: http2.Http2Stream, chunks: readonly Buffer[], sent: { bytes: number }) {
  for (const chunk of chunks) {
    const more = stream.write(chunk, () => {
      sent.bytes += chunk.length;
    });
    if (!more) await new Promise<void>((resolve) => stream.once("drain", resolve));
  }
}

/** Reads a stream slowly (a pause after every burst), hashing every byte; tracks how far `sent` got ahead. */
function readSlowly(stream: http2.Http2Stream, sent: { bytes: number }) {
  const hash = createHash("sha256");
  let received = 0;
  let sinceBreak = 0;
  let ahead = 0;
  const done = new Promise<{ hash: string; received: number; maxAhead: number }>((resolve, reject) => {
    stream.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      received += chunk.length;
      sinceBreak += chunk.length;
      ahead = Math.max(ahead, sent.bytes - received);
      if (sinceBreak >= burst) {
        sinceBreak = 0;
        stream.pause();
        setTimeout(() => stream.resume(), pauseMs);
      }
    });
    stream.once("end", () => resolve({ hash: hash.digest("hex"), received, maxAhead: ahead }));
    stream.once("error", reject);
  });
  return done;
}

function expectedHash(): string {
  const hash = createHash("sha256");
  for (const chunk of framed(body)) hash.update(chunk);
  return hash.digest("hex");
}

/** Peak resident memory of a process (VmHWM), in MiB. */
function peakRssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmHWM:\s+(\d+) kB/);
  return Number(line?.[1] ?? 0) / 1024;
}

// What the backend saw of the last upload, and how much it was sent of the last download.
let upload: Promise<{ hash: string; received: number; maxAhead: number }> | undefined;
const uploadSent = { bytes: 0 };
const downloadSent = { bytes: 0 };

beforeAll(async () => {
  body = randomBytes(total);
  bodyHash = expectedHash();
  backend = http2.createServer();
  backend.on("stream", (stream, headers) => {
    const path = headers[":path"];
    stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    if (path === "/test.Bulk/Download") {
      stream.resume();
      void writeAll(stream, framed(body), downloadSent).then(() => stream.end());
    } else {
      // The slow server: it reads the upload slowly, then answers once it has all of it.
      upload = readSlowly(stream, uploadSent);
      void upload.then(
        () => stream.end(),
        () => stream.close(),
      );
    }
  });
  await new Promise<void>((resolve) => backend.listen(0, "127.0.140.2", resolve));
  const target = `static:///127.0.140.2:${(backend.address() as AddressInfo).port}`;
  proxy = await startProxyProcess(["--listen", "127.0.140.1:0", "--target", target, "--workers", "1"], {
    timeoutMs: 90_000,
  });
});

afterAll(async () => {
  proxy?.kill("SIGKILL");
  await proxy?.exited;
  await new Promise<void>((resolve) => backend.close(() => resolve()));
});

function request(session: http2.ClientHttp2Session, path: string) {
  return session.request({
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc",
    te: "trailers",
  });
}

function trailersOf(stream: http2.ClientHttp2Stream) {
  return new Promise<http2.IncomingHttpHeaders>((resolve) => stream.once("trailers", resolve));
}

describe("flow control through the proxy, 64 MiB each way", () => {
  it("passes a 64 MiB server stream to a slow reader intact, holding the backend back", async () => {
    const session = http2.connect(`http://${proxy.address}`);
    const rssBefore = peakRssMiB(proxy.child.pid as number);
    try {
      const stream = request(session, "/test.Bulk/Download");
      const trailers = trailersOf(stream);
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
      const read = await readSlowly(stream, downloadSent);
      expect((await trailers)["grpc-status"]).toBe("0");
      expect(read.received).toBe(framedSize(total));
      expect(read.hash).toBe(bodyHash);
      console.log(
        `download: at most ${(read.maxAhead / 2 ** 20).toFixed(1)} MiB sent ahead of the reader; proxy peak RSS ${rssBefore.toFixed(0)} -> ${peakRssMiB(proxy.child.pid as number).toFixed(0)} MiB`,
      );
      expect(read.maxAhead).toBeLessThan(maxAhead);
    } finally {
      session.close();
    }
  });

  it("passes a 64 MiB client stream to a slow server intact, holding the client back", async () => {
    const session = http2.connect(`http://${proxy.address}`);
    const rssBefore = peakRssMiB(proxy.child.pid as number);
    try {
      uploadSent.bytes = 0;
      const stream = request(session, "/test.Bulk/Upload");
      const trailers = trailersOf(stream);
      stream.resume();
      await writeAll(stream, framed(body), uploadSent);
      stream.end();
      await waitFor("the backend to take the upload", () => upload !== undefined);
      const read = await (upload as NonNullable<typeof upload>);
      expect((await trailers)["grpc-status"]).toBe("0");
      expect(read.received).toBe(framedSize(total));
      expect(read.hash).toBe(bodyHash);
      console.log(
        `upload: at most ${(read.maxAhead / 2 ** 20).toFixed(1)} MiB sent ahead of the server; proxy peak RSS ${rssBefore.toFixed(0)} -> ${peakRssMiB(proxy.child.pid as number).toFixed(0)} MiB`,
      );
      expect(read.maxAhead).toBeLessThan(maxAhead);
    } finally {
      session.close();
    }
  });
});
