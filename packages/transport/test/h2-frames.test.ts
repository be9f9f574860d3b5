import { describe, expect, it } from "vitest";
import { createFrameReader, type FrameReader } from "../src/h2/frame-reader.js";
import { clientPreface, Flag, FrameType, SettingId } from "../src/h2/frame-types.js";
import { createFrameWriter } from "../src/h2/frame-writer.js";
import { ErrorCode, H2Error } from "../src/h2/h2-error.js";
import { applySettings, initialSettings } from "../src/h2/settings.js";

/** A raw frame, for the inputs the writer never makes. */
function frame(type: number, flags: number, streamId: number, payload: Uint8Array | number[] = []): Buffer {
  const p = Buffer.from(payload);
  const h = Buffer.alloc(9);
  h.writeUIntBE(p.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return Buffer.concat([h, p]);
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return [...b];
};

interface Seen {
  type: number;
  flags: number;
  streamId: number;
  payload: string;
  length: number;
  endStream: boolean;
  ack: boolean;
  errorCode?: number;
  lastStreamId?: number;
  windowIncrement?: number;
}
function drain(reader: FrameReader, out: Seen[]) {
  for (let t = reader.next(); t !== -1; t = reader.next()) {
    const s: Seen = {
      type: t,
      flags: reader.flags,
      streamId: reader.streamId,
      payload: reader.payload.toString("hex"),
      length: reader.length,
      endStream: reader.endStream,
      ack: reader.ack,
    };
    if (t === FrameType.RST_STREAM || t === FrameType.GOAWAY) s.errorCode = reader.errorCode;
    if (t === FrameType.GOAWAY) s.lastStreamId = reader.lastStreamId;
    if (t === FrameType.WINDOW_UPDATE) s.windowIncrement = reader.windowIncrement;
    out.push(s);
  }
}
/** Feeds `bytes` to a new reader in pieces cut at `cuts`; returns the frames seen. */
function readAll(bytes: Buffer, cuts: number[], options = {}): Seen[] {
  const reader = createFrameReader(options);
  const out: Seen[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    reader.push(bytes.subarray(from, cut));
    drain(reader, out);
    from = cut;
  }
  expect(reader.buffered).toBe(0);
  return out;
}
function errorOf(bytes: Buffer, options = {}): H2Error {
  const reader = createFrameReader(options);
  reader.push(bytes);
  try {
    drain(reader, []);
  } catch (e) {
    expect(e).toBeInstanceOf(H2Error);
    return e as H2Error;
  }
  throw new Error("no error");
}

function everyFrame(): Buffer {
  const w = createFrameWriter();
  w.settings([SettingId.ENABLE_PUSH, 0, SettingId.INITIAL_WINDOW_SIZE, 1 << 20, SettingId.MAX_FRAME_SIZE, 32768]);
  w.settingsAck();
  w.headers(1, Buffer.from("header block"), false);
  w.data(1, Buffer.from("hello"), false);
  w.data(1, Buffer.alloc(0), true);
  w.ping(Buffer.from("12345678"), false);
  w.ping(Buffer.from("abcdefgh"), true);
  w.windowUpdate(0, 1000);
  w.windowUpdate(3, 0x7fffffff);
  w.rstStream(3, ErrorCode.CANCEL);
  w.headers(5, Buffer.from("trailers"), true);
  w.goaway(7, ErrorCode.ENHANCE_YOUR_CALM, Buffer.from("calm down"));
  w.goaway(9, ErrorCode.NO_ERROR);
  return w.take()!;
}
const expected: Partial<Seen>[] = [
  { type: FrameType.SETTINGS, payload: "000200000000" + "000400100000" + "000500008000", ack: false },
  { type: FrameType.SETTINGS, payload: "", ack: true },
  { type: FrameType.HEADERS, streamId: 1, payload: Buffer.from("header block").toString("hex"), endStream: false },
  { type: FrameType.DATA, streamId: 1, payload: Buffer.from("hello").toString("hex"), endStream: false, length: 5 },
  { type: FrameType.DATA, streamId: 1, payload: "", endStream: true },
  { type: FrameType.PING, payload: Buffer.from("12345678").toString("hex"), ack: false },
  { type: FrameType.PING, payload: Buffer.from("abcdefgh").toString("hex"), ack: true },
  { type: FrameType.WINDOW_UPDATE, streamId: 0, windowIncrement: 1000 },
  { type: FrameType.WINDOW_UPDATE, streamId: 3, windowIncrement: 0x7fffffff },
  { type: FrameType.RST_STREAM, streamId: 3, errorCode: ErrorCode.CANCEL },
  { type: FrameType.HEADERS, streamId: 5, payload: Buffer.from("trailers").toString("hex"), endStream: true },
  {
    type: FrameType.GOAWAY,
    lastStreamId: 7,
    errorCode: ErrorCode.ENHANCE_YOUR_CALM,
    payload: Buffer.from("calm down").toString("hex"),
  },
  { type: FrameType.GOAWAY, lastStreamId: 9, errorCode: 0, payload: "" },
];

describe("frame writer and reader", () => {
  it("round-trip every frame type, in one chunk, at every split point, and byte by byte", () => {
    const bytes = everyFrame();
    const whole = readAll(bytes, []);
    expect(whole).toHaveLength(expected.length);
    whole.forEach((s, i) => {
      expect(s).toMatchObject(expected[i]!);
    });
    for (let cut = 1; cut < bytes.length; cut++) expect(readAll(bytes, [cut])).toEqual(whole);
    expect(
      readAll(
        bytes,
        Array.from({ length: bytes.length - 1 }, (_, i) => i + 1),
      ),
    ).toEqual(whole);
  });

  it("hand out payloads as views of the pushed chunk, copying only a frame that straddles chunks", () => {
    const w = createFrameWriter();
    w.data(1, Buffer.from("first"), false);
    w.data(1, Buffer.from("second"), true);
    const bytes = Buffer.from(w.take()!);
    const reader = createFrameReader();
    reader.push(bytes.subarray(0, 20));
    expect(reader.next()).toBe(FrameType.DATA);
    expect(reader.payload.buffer).toBe(bytes.buffer); // same memory
    expect(reader.payload.toString()).toBe("first");
    expect(reader.next()).toBe(-1);
    reader.push(bytes.subarray(20));
    expect(reader.next()).toBe(FrameType.DATA);
    expect(reader.payload.toString()).toBe("second");
  });

  it("copy only the straddling frame: the frames after it in the next chunk stay views", () => {
    const w = createFrameWriter();
    w.data(1, Buffer.from("straddles"), false);
    w.data(1, Buffer.from("after"), true);
    const bytes = Buffer.from(w.take()!);
    const reader = createFrameReader();
    reader.push(bytes.subarray(0, 12));
    expect(reader.next()).toBe(-1);
    const rest = Buffer.alloc(bytes.length - 12); // its own memory, not the pool's
    bytes.copy(rest, 0, 12);
    reader.push(rest);
    expect(reader.next()).toBe(FrameType.DATA);
    expect(reader.payload.toString()).toBe("straddles");
    expect(reader.next()).toBe(FrameType.DATA);
    expect(reader.payload.toString()).toBe("after");
    expect(reader.payload.buffer).toBe(rest.buffer);
    expect(reader.payload.byteOffset).toBe(rest.byteOffset + 18 + 9 - 12);
    expect(reader.buffered).toBe(0);
  });

  it("split DATA and header blocks to the peer's max frame size; coalesce frames into one buffer", () => {
    const w = createFrameWriter();
    w.maxFrameSize = 16384;
    const body = Buffer.alloc(40000, 7);
    const block = Buffer.alloc(20000, 9);
    w.headers(1, block, false);
    w.data(1, body, true);
    const bytes = w.take()!;
    expect(w.take()).toBeUndefined();
    const frames = readAll(bytes, [], { maxBlockSize: 65536 });
    // HEADERS + CONTINUATION arrive as one HEADERS with the whole block.
    expect(frames.map((f) => [f.type, f.length, f.endStream])).toEqual([
      [FrameType.HEADERS, 20000 - 16384, false],
      [FrameType.DATA, 16384, false],
      [FrameType.DATA, 16384, false],
      [FrameType.DATA, 40000 - 32768, true],
    ]);
    expect(frames[0]!.payload).toBe(block.toString("hex"));
    expect(frames[0]!.flags & Flag.END_HEADERS).toBe(Flag.END_HEADERS);
    expect(bytes.length).toBe(20000 + 40000 + 5 * 9);
  });

  it("never write over a taken buffer (the socket may still hold it)", () => {
    const w = createFrameWriter({ chunkSize: 4096 });
    const taken: [Buffer, string][] = [];
    for (let i = 0; i < 200; i++) {
      w.data(1, Buffer.alloc(i * 13, i), false);
      w.ping(Buffer.alloc(8, i), false);
      const b = w.take()!;
      taken.push([b, b.toString("hex")]);
    }
    for (const [b, hex] of taken) expect(b.toString("hex")).toBe(hex);
  });

  it("read padding of DATA and HEADERS and the priority fields of HEADERS, and skip PRIORITY and unknown types", () => {
    const bytes = Buffer.concat([
      frame(FrameType.DATA, Flag.PADDED | Flag.END_STREAM, 1, [3, 0x61, 0x62, 0, 0, 0]),
      frame(0xfa, 0xff, 0, [1, 2, 3]), // unknown type: ignored
      frame(FrameType.PRIORITY, 0, 3, [...u32(1), 16]),
      frame(FrameType.HEADERS, Flag.PADDED | Flag.PRIORITY | Flag.END_HEADERS, 3, [
        2,
        ...u32(0x80000001),
        255,
        0x82,
        0,
        0,
      ]),
      frame(FrameType.DATA, Flag.PADDED, 3, [0]),
    ]);
    const frames = readAll(bytes, []);
    expect(frames.map((f) => [f.type, f.streamId, f.payload, f.length, f.endStream])).toEqual([
      [FrameType.DATA, 1, "6162", 6, true],
      [FrameType.HEADERS, 3, "82", 9, false],
      [FrameType.DATA, 3, "", 1, false],
    ]);
  });

  it("check the client connection preface, failing an HTTP/1.1 request at its first bytes", () => {
    const ok = Buffer.concat([clientPreface, frame(FrameType.SETTINGS, 0, 0)]);
    for (let cut = 1; cut < ok.length; cut++) {
      expect(readAll(ok, [cut], { preface: true }).map((f) => f.type)).toEqual([FrameType.SETTINGS]);
    }
    const reader = createFrameReader({ preface: true });
    reader.push(Buffer.from("GET"));
    expect(() => reader.next()).toThrow(/preface/);
    expect(errorOf(Buffer.from("PRI * HTTP/1.1\r\n"), { preface: true }).code).toBe(ErrorCode.PROTOCOL_ERROR);
  });
});

describe("frame validation (RFC 9113)", () => {
  const cases: [string, Buffer, number, number, object?][] = [
    [
      "frame over SETTINGS_MAX_FRAME_SIZE",
      frame(FrameType.DATA, 0, 1, Buffer.alloc(16385)),
      ErrorCode.FRAME_SIZE_ERROR,
      0,
    ],
    ["DATA on stream 0", frame(FrameType.DATA, 0, 0, [1]), ErrorCode.PROTOCOL_ERROR, 0],
    ["HEADERS on stream 0", frame(FrameType.HEADERS, Flag.END_HEADERS, 0, [0x82]), ErrorCode.PROTOCOL_ERROR, 0],
    ["padding as long as the payload", frame(FrameType.DATA, Flag.PADDED, 1, [2, 0]), ErrorCode.PROTOCOL_ERROR, 0],
    ["PADDED with no pad length", frame(FrameType.DATA, Flag.PADDED, 1, []), ErrorCode.FRAME_SIZE_ERROR, 0],
    [
      "HEADERS padding too long",
      frame(FrameType.HEADERS, Flag.PADDED | Flag.END_HEADERS, 1, [5, 1, 2]),
      ErrorCode.PROTOCOL_ERROR,
      0,
    ],
    ["SETTINGS on a stream", frame(FrameType.SETTINGS, 0, 1), ErrorCode.PROTOCOL_ERROR, 0],
    ["SETTINGS not a multiple of 6", frame(FrameType.SETTINGS, 0, 0, [0, 1, 0, 0, 0]), ErrorCode.FRAME_SIZE_ERROR, 0],
    [
      "SETTINGS ACK with a payload",
      frame(FrameType.SETTINGS, Flag.ACK, 0, [0, 1, 0, 0, 0, 0]),
      ErrorCode.FRAME_SIZE_ERROR,
      0,
    ],
    ["ENABLE_PUSH 2", frame(FrameType.SETTINGS, 0, 0, [0, 2, ...u32(2)]), ErrorCode.PROTOCOL_ERROR, 0],
    [
      "INITIAL_WINDOW_SIZE 2^31",
      frame(FrameType.SETTINGS, 0, 0, [0, 4, ...u32(2 ** 31)]),
      ErrorCode.FLOW_CONTROL_ERROR,
      0,
    ],
    ["MAX_FRAME_SIZE 16383", frame(FrameType.SETTINGS, 0, 0, [0, 5, ...u32(16383)]), ErrorCode.PROTOCOL_ERROR, 0],
    ["MAX_FRAME_SIZE 2^24", frame(FrameType.SETTINGS, 0, 0, [0, 5, ...u32(2 ** 24)]), ErrorCode.PROTOCOL_ERROR, 0],
    ["PING on a stream", frame(FrameType.PING, 0, 1, Buffer.alloc(8)), ErrorCode.PROTOCOL_ERROR, 0],
    ["PING of 7 bytes", frame(FrameType.PING, 0, 0, Buffer.alloc(7)), ErrorCode.FRAME_SIZE_ERROR, 0],
    ["WINDOW_UPDATE of 3 bytes", frame(FrameType.WINDOW_UPDATE, 0, 0, [0, 0, 1]), ErrorCode.FRAME_SIZE_ERROR, 0],
    ["WINDOW_UPDATE 0 on the connection", frame(FrameType.WINDOW_UPDATE, 0, 0, u32(0)), ErrorCode.PROTOCOL_ERROR, 0],
    ["WINDOW_UPDATE 0 on a stream", frame(FrameType.WINDOW_UPDATE, 0, 5, u32(0)), ErrorCode.PROTOCOL_ERROR, 5],
    ["RST_STREAM on stream 0", frame(FrameType.RST_STREAM, 0, 0, u32(8)), ErrorCode.PROTOCOL_ERROR, 0],
    ["RST_STREAM of 5 bytes", frame(FrameType.RST_STREAM, 0, 1, [0, 0, 0, 0, 8]), ErrorCode.FRAME_SIZE_ERROR, 0],
    ["GOAWAY on a stream", frame(FrameType.GOAWAY, 0, 1, Buffer.alloc(8)), ErrorCode.PROTOCOL_ERROR, 0],
    ["GOAWAY of 7 bytes", frame(FrameType.GOAWAY, 0, 0, Buffer.alloc(7)), ErrorCode.FRAME_SIZE_ERROR, 0],
    ["PRIORITY on stream 0", frame(FrameType.PRIORITY, 0, 0, Buffer.alloc(5)), ErrorCode.PROTOCOL_ERROR, 0],
    ["PRIORITY of 4 bytes", frame(FrameType.PRIORITY, 0, 3, Buffer.alloc(4)), ErrorCode.FRAME_SIZE_ERROR, 3],
    ["PRIORITY on itself", frame(FrameType.PRIORITY, 0, 3, [...u32(3), 0]), ErrorCode.PROTOCOL_ERROR, 3],
    [
      "PUSH_PROMISE",
      frame(FrameType.PUSH_PROMISE, Flag.END_HEADERS, 1, [...u32(2), 0x82]),
      ErrorCode.PROTOCOL_ERROR,
      0,
    ],
    [
      "CONTINUATION without HEADERS",
      frame(FrameType.CONTINUATION, Flag.END_HEADERS, 1, [0x82]),
      ErrorCode.PROTOCOL_ERROR,
      0,
    ],
    [
      "a frame inside a header block",
      Buffer.concat([frame(FrameType.HEADERS, 0, 1, [0x82]), frame(FrameType.PING, 0, 0, Buffer.alloc(8))]),
      ErrorCode.PROTOCOL_ERROR,
      0,
    ],
    [
      "an unknown frame inside a header block",
      Buffer.concat([frame(FrameType.HEADERS, 0, 1, [0x82]), frame(0xfa, 0, 0)]),
      ErrorCode.PROTOCOL_ERROR,
      0,
    ],
    [
      "CONTINUATION of another stream",
      Buffer.concat([
        frame(FrameType.HEADERS, 0, 1, [0x82]),
        frame(FrameType.CONTINUATION, Flag.END_HEADERS, 3, [0x84]),
      ]),
      ErrorCode.PROTOCOL_ERROR,
      0,
    ],
    [
      "header block over maxBlockSize",
      Buffer.concat([
        frame(FrameType.HEADERS, 0, 1, Buffer.alloc(600)),
        frame(FrameType.CONTINUATION, 0, 1, Buffer.alloc(600)),
      ]),
      ErrorCode.ENHANCE_YOUR_CALM,
      0,
      { maxBlockSize: 1000 },
    ],
    [
      "a flood of empty CONTINUATION frames",
      Buffer.concat([
        frame(FrameType.HEADERS, 0, 1, [0x82]),
        ...Array.from({ length: 40 }, () => frame(FrameType.CONTINUATION, 0, 1)),
      ]),
      ErrorCode.ENHANCE_YOUR_CALM,
      0,
    ],
  ];
  for (const [name, bytes, code, streamId, options] of cases) {
    it(`${name}: ${streamId === 0 ? "connection" : "stream"} error ${code}`, () => {
      const e = errorOf(bytes, options);
      expect(e.code).toBe(code);
      expect(e.streamId).toBe(streamId);
      expect(e.isConnectionError).toBe(streamId === 0);
    });
  }

  it("an oversized frame fails on its header, before its payload is buffered", () => {
    const reader = createFrameReader();
    reader.push(frame(FrameType.DATA, 0, 1).subarray(0, 9).fill(0xff, 0, 3)); // length 2^24-1, no payload yet
    expect(() => reader.next()).toThrow(/over SETTINGS_MAX_FRAME_SIZE/);
  });

  it("a stream error consumes its frame: the next frames still parse", () => {
    const reader = createFrameReader();
    reader.push(
      Buffer.concat([frame(FrameType.WINDOW_UPDATE, 0, 5, u32(0)), frame(FrameType.PING, 0, 0, Buffer.alloc(8))]),
    );
    expect(() => reader.next()).toThrow(H2Error);
    expect(reader.next()).toBe(FrameType.PING);
  });

  it("HEADERS depending on itself: the block is handed out with a stream error to answer after decoding it", () => {
    const reader = createFrameReader();
    reader.push(
      Buffer.concat([
        frame(FrameType.HEADERS, Flag.PRIORITY, 3, [...u32(3), 16, 0x82]),
        frame(FrameType.CONTINUATION, Flag.END_HEADERS, 3, [0x84]),
      ]),
    );
    expect(reader.next()).toBe(FrameType.HEADERS);
    expect(reader.payload.toString("hex")).toBe("8284");
    expect(reader.streamError?.code).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(reader.streamError?.streamId).toBe(3);
  });

  it("SETTINGS values at the edges of their ranges are accepted", () => {
    const payload = [
      ...[0, 5, ...u32(16384)],
      ...[0, 5, ...u32(2 ** 24 - 1)],
      ...[0, 4, ...u32(2 ** 31 - 1)],
      ...[0, 2, ...u32(0)],
      ...[0, 2, ...u32(1)],
      ...[0, 8, ...u32(1)],
      ...[0, 0x42, ...u32(2 ** 32 - 1)], // unknown: ignored whatever its value
    ];
    expect(readAll(frame(FrameType.SETTINGS, 0, 0, payload), []).map((f) => f.type)).toEqual([FrameType.SETTINGS]);
  });

  it("a larger SETTINGS_MAX_FRAME_SIZE of ours lets larger frames in", () => {
    const bytes = frame(FrameType.DATA, 0, 1, Buffer.alloc(20000));
    expect(readAll(bytes, [], { maxFrameSize: 32768 })[0]!.length).toBe(20000);
  });
});

describe("settings", () => {
  it("apply in order and report which parameters changed", () => {
    const s = initialSettings();
    const payload = Buffer.from([
      ...[0, 4, ...u32(1 << 20)],
      ...[0, 1, ...u32(4096)], // unchanged
      ...[0, 3, ...u32(100)],
      ...[0, 0x99, ...u32(5)], // unknown: ignored
    ]);
    const changes = applySettings(payload, s);
    expect(changes).toBe((1 << SettingId.INITIAL_WINDOW_SIZE) | (1 << SettingId.MAX_CONCURRENT_STREAMS));
    expect(s.initialWindowSize).toBe(1 << 20);
    expect(s.maxConcurrentStreams).toBe(100);
    expect(s.headerTableSize).toBe(4096);
  });
});

describe("frame reader on hostile bytes", () => {
  it("random bytes after the preface: only H2Error, bounded work, never a hang", () => {
    let seed = 99;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed >> 8;
    };
    const t0 = performance.now();
    let frames = 0;
    for (let i = 0; i < 3000; i++) {
      const reader = createFrameReader({ preface: true, maxBlockSize: 4096 });
      const junk = Buffer.alloc(rand() % 300);
      for (let j = 0; j < junk.length; j++) junk[j] = rand() & 0xff;
      // Mostly valid frame headers with junk inside, so the checks past the header get exercised.
      if (junk.length >= 9) {
        junk.writeUIntBE(Math.min(junk.length - 9, rand() % 64), 0, 3);
        junk[3] = rand() % 11;
      }
      reader.push(clientPreface);
      try {
        reader.push(junk);
        for (let t = reader.next(); t !== -1; t = reader.next()) frames++;
      } catch (e) {
        if (!(e instanceof H2Error)) throw e;
      }
    }
    expect(frames).toBeGreaterThan(0);
    expect(performance.now() - t0).toBeLessThan(10_000);
  });
});
