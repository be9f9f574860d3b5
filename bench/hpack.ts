/**
 * HPACK for the frame engine (issue 19): hpack.js against our own RFC 7541
 * code (packages/proxy/src/h2/), on the header blocks a proxy sees per gRPC
 * unary call: the request's headers, the response's headers, the trailers.
 * One encoder/decoder pair per direction lives across calls, as on a
 * connection, so the dynamic table is warm; grpc-timeout and one metadata
 * value change per call. Implementations take turns in every run; the
 * figures are medians of the runs, in ns per header block.
 *
 *   pnpm exec tsx bench/hpack.ts [--runs 7] [--calls 3000]
 *
 * Not part of `pnpm bench`: it decided a dependency, once.
 */
import { createRequire } from "node:module";
import { createHpackDecoder } from "../packages/transport/src/h2/hpack-decoder.js";
import { createHpackEncoder } from "../packages/transport/src/h2/hpack-encoder.js";

const require = createRequire(import.meta.url);
// biome-ignore lint/suspicious/noExplicitAny: hpack.js ships no types
const hpackjs: any = require("hpack.js");

const args = process.argv.slice(2);
const arg = (name: string, d: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const runs = arg("runs", 7);
const calls = arg("calls", 3000);

function requestFields(call: number): string[] {
  return [
    ":method",
    "POST",
    ":scheme",
    "http",
    ":path",
    "/shop.orders.v1.OrderService/GetOrder",
    ":authority",
    "orders.shop.svc.cluster.local:50051",
    "content-type",
    "application/grpc",
    "te",
    "trailers",
    "grpc-timeout",
    `${(call % 997) + 1000}m`,
    "user-agent",
    "grpc-node-js/1.14.7",
    "grpc-accept-encoding",
    "identity,deflate,gzip",
    "x-tenant",
    "acme",
    "x-request-id",
    `7f3c9a${call.toString(16).padStart(8, "0")}`,
    "traceparent",
    `00-4bf92f3577b34da6a3ce929d0e0e${(call % 65536).toString(16).padStart(4, "0")}-00f067aa0ba902b7-01`,
  ];
}
// Built before the timed part: both implementations get the same strings.
const requests = Array.from({ length: calls }, (_, i) => requestFields(i));
const responseFields = [":status", "200", "content-type", "application/grpc", "grpc-accept-encoding", "identity,gzip"];
const trailerFields = ["grpc-status", "0", "grpc-message", ""];

interface Impl {
  name: string;
  /** Returns the encoded blocks for `calls` calls (3 per call). */
  encodeAll(): Buffer[];
  decodeAll(blocks: Buffer[]): number;
}

function own(huffman: boolean): Impl {
  const enc = createHpackEncoder({ huffman });
  const dec = createHpackDecoder();
  let call = 0;
  return {
    name: huffman ? "own (Huffman where shorter)" : "own (no Huffman)",
    encodeAll() {
      const blocks: Buffer[] = [];
      for (let i = 0; i < calls; i++, call++) {
        // The result is a view of scratch: a real writer copies it into a frame.
        blocks.push(Buffer.from(enc.encode(requests[call % calls]!)));
        blocks.push(Buffer.from(enc.encode(responseFields)));
        blocks.push(Buffer.from(enc.encode(trailerFields)));
      }
      return blocks;
    },
    decodeAll(blocks) {
      let n = 0;
      for (const b of blocks) n += dec.decode(b).length;
      return n;
    },
  };
}

function hpackJs(): Impl {
  const comp = hpackjs.compressor.create({ table: { size: 4096 } });
  const decomp = hpackjs.decompressor.create({ table: { size: 4096 } });
  let call = 0;
  const toObjects = (f: string[]) => {
    const o: { name: string; value: string }[] = [];
    for (let i = 0; i < f.length; i += 2) o.push({ name: f[i]!, value: f[i + 1]! });
    return o;
  };
  const enc = (f: string[]) => {
    comp.write(toObjects(f));
    return comp.read() as Buffer;
  };
  return {
    name: "hpack.js 2.1.6",
    encodeAll() {
      const blocks: Buffer[] = [];
      for (let i = 0; i < calls; i++, call++) {
        blocks.push(enc(requests[call % calls]!));
        blocks.push(enc(responseFields));
        blocks.push(enc(trailerFields));
      }
      return blocks;
    },
    decodeAll(blocks) {
      let n = 0;
      for (const b of blocks) {
        decomp.write(b);
        decomp.execute();
        for (;;) {
          const h = decomp.read();
          if (h === null) break;
          n += 2;
        }
      }
      return n;
    },
  };
}

const impls = [own(true), own(false), hpackJs()];
const results = new Map<string, { enc: number[]; dec: number[]; bytes: number }>();
for (const impl of impls) results.set(impl.name, { enc: [], dec: [], bytes: 0 });
const blocksPerRun = calls * 3;
for (let run = 0; run <= runs; run++) {
  for (const impl of run % 2 ? [...impls].reverse() : impls) {
    const t0 = process.hrtime.bigint();
    const blocks = impl.encodeAll();
    const t1 = process.hrtime.bigint();
    const fields = impl.decodeAll(blocks);
    const t2 = process.hrtime.bigint();
    if (fields !== calls * (24 + 6 + 4)) throw new Error(`${impl.name} decoded ${fields} strings`);
    if (run === 0) continue; // warm-up
    const r = results.get(impl.name)!;
    r.enc.push(Number(t1 - t0) / blocksPerRun);
    r.dec.push(Number(t2 - t1) / blocksPerRun);
    r.bytes = blocks.reduce((s, b) => s + b.length, 0) / calls;
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`HPACK, ${calls} unary calls per run (3 blocks each), ${runs} runs, medians, ns per block`);
console.log("implementation                 encode   decode   bytes per call (3 blocks)");
for (const [name, r] of results) {
  console.log(
    `${name.padEnd(30)} ${median(r.enc).toFixed(0).padStart(6)}   ${median(r.dec).toFixed(0).padStart(6)}   ${r.bytes.toFixed(1)}`,
  );
}
