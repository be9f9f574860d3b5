import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EnvelopeReader, encodeEnvelope } from "../src/envelope.js";

function collect(readMaxBytes = 0xffffffff) {
  const frames: { flags: number; data: number[] }[] = [];
  const reader = new EnvelopeReader(readMaxBytes, {
    onFrame: (flags, data) => frames.push({ flags, data: [...data] }),
  });
  return { frames, reader };
}

const wire = Buffer.concat([
  encodeEnvelope(0, new Uint8Array([1, 2, 3])),
  encodeEnvelope(1, new Uint8Array([])),
  encodeEnvelope(0, new Uint8Array(Array.from({ length: 300 }, (_, i) => i & 0xff))),
]);

describe("EnvelopeReader", () => {
  it("parses envelopes cut at every possible point", () => {
    const expected = collect();
    expect(expected.reader.push(wire)).toBeUndefined();
    expect(expected.frames).toHaveLength(3);
    for (let a = 0; a <= wire.length; a++) {
      for (const b of [a, Math.min(wire.length, a + 1), Math.min(wire.length, a + 7)]) {
        const { frames, reader } = collect();
        for (const chunk of [wire.subarray(0, a), wire.subarray(a, b), wire.subarray(b)]) {
          expect(reader.push(chunk)).toBeUndefined();
        }
        expect(reader.end()).toBeUndefined();
        expect(frames).toEqual(expected.frames);
      }
    }
  });

  it("reports an envelope cut short at the end of the stream", () => {
    const { reader } = collect();
    reader.push(wire.subarray(0, 6));
    expect(reader.end()?.code).toBe(Code.InvalidArgument);
    const partialHeader = collect();
    partialHeader.reader.push(wire.subarray(0, 2));
    expect(partialHeader.reader.end()?.message).toMatch(/incomplete envelope/);
  });

  it("rejects a message larger than readMaxBytes from its header alone", () => {
    const { reader, frames } = collect(100);
    const err = reader.push(wire.subarray(wire.length - 305, wire.length - 300));
    expect(err?.code).toBe(Code.ResourceExhausted);
    expect(err?.message).toMatch(/readMaxBytes 100/);
    expect(frames).toEqual([]);
  });

  it("does not trust a huge announced length with memory", () => {
    const { reader, frames } = collect();
    const header = Buffer.from([0, 0xff, 0xff, 0xff, 0xff]);
    expect(reader.push(Buffer.concat([header, Buffer.alloc(10)]))).toBeUndefined();
    expect(frames).toEqual([]);
    expect(reader.end()?.code).toBe(Code.InvalidArgument);
  });
});
