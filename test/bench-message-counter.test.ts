import { describe, expect, it } from "vitest";
import { MessageCounter } from "../bench/support/message-counter.js";

/** A gRPC envelope: flags 0, big-endian length, the message. */
function envelope(length: number): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(length, 1);
  return Buffer.concat([prefix, Buffer.alloc(length, 0x61)]);
}

// Lengths that put a non-zero byte in more than one prefix byte (300, 70_000) and an empty message.
const lengths = [7, 0, 300, 1, 70_000, 19];
const body = Buffer.concat(lengths.map(envelope));

describe("bench MessageCounter", () => {
  it("counts every message of a body in one chunk", () => {
    const counter = new MessageCounter();
    counter.push(body);
    expect(counter.count).toBe(lengths.length);
  });

  it("counts the same wherever the body is split in two, prefixes and messages straddling chunks", () => {
    for (let at = 0; at <= body.length; at += at < 400 ? 1 : 997) {
      const counter = new MessageCounter();
      counter.push(body.subarray(0, at));
      counter.push(body.subarray(at));
      expect(counter.count, `split at ${at}`).toBe(lengths.length);
    }
  });

  it("counts the same fed byte by byte, and counts a message only once whole", () => {
    const counter = new MessageCounter();
    const small = Buffer.concat([envelope(3), envelope(0), envelope(2)]);
    const seen: number[] = [];
    for (let i = 0; i < small.length; i++) {
      counter.push(small.subarray(i, i + 1));
      seen.push(counter.count);
    }
    // 8 bytes for the first (done at byte 8), 5 for the empty one (13), 7 for the last (20).
    expect(seen.indexOf(1)).toBe(7);
    expect(seen.indexOf(2)).toBe(12);
    expect(seen.indexOf(3)).toBe(19);
    expect(counter.count).toBe(3);
  });

  it("does not count a message whose bytes have not all arrived", () => {
    const counter = new MessageCounter();
    counter.push(envelope(10).subarray(0, 14));
    expect(counter.count).toBe(0);
  });
});
