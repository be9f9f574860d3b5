import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { CompressionError, HeaderListTooLargeError } from "../src/h2/h2-error.js";
import { createHpackDecoder } from "../src/h2/hpack-decoder.js";
import { createHpackEncoder } from "../src/h2/hpack-encoder.js";
import { huffmanCodes, huffmanDecode, huffmanEncode, huffmanLengths } from "../src/h2/hpack-huffman.js";

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");
const pairs = (fields: string[]) => {
  const out: [string, string][] = [];
  for (let i = 0; i < fields.length; i += 2) out.push([fields[i]!, fields[i + 1]!]);
  return out;
};
const flat = (p: [string, string][]) => p.flat();
const tableOf = (t: { length: number; name(i: number): string; value(i: number): string }) =>
  Array.from({ length: t.length }, (_, i) => [t.name(i), t.value(i)]);

// RFC 7541 Appendix C.
const c3: { block: string; fields: [string, string][]; size: number }[] = [
  {
    block: "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    fields: [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
    ],
    size: 57,
  },
  {
    block: "8286 84be 5808 6e6f 2d63 6163 6865",
    fields: [
      [":method", "GET"],
      [":scheme", "http"],
      [":path", "/"],
      [":authority", "www.example.com"],
      ["cache-control", "no-cache"],
    ],
    size: 110,
  },
  {
    block: "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    fields: [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
    size: 164,
  },
];
const c4 = [
  "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
  "8286 84be 5886 a8eb 1064 9cbf",
  "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];
const date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
const date2 = "Mon, 21 Oct 2013 20:13:22 GMT";
const cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const c5: { fields: [string, string][]; table: [string, string][]; size: number }[] = [
  {
    fields: [
      [":status", "302"],
      ["cache-control", "private"],
      ["date", date1],
      ["location", "https://www.example.com"],
    ],
    table: [
      ["location", "https://www.example.com"],
      ["date", date1],
      ["cache-control", "private"],
      [":status", "302"],
    ],
    size: 222,
  },
  {
    fields: [
      [":status", "307"],
      ["cache-control", "private"],
      ["date", date1],
      ["location", "https://www.example.com"],
    ],
    table: [
      [":status", "307"],
      ["location", "https://www.example.com"],
      ["date", date1],
      ["cache-control", "private"],
    ],
    size: 222,
  },
  {
    fields: [
      [":status", "200"],
      ["cache-control", "private"],
      ["date", date2],
      ["location", "https://www.example.com"],
      ["content-encoding", "gzip"],
      ["set-cookie", cookie],
    ],
    table: [
      ["set-cookie", cookie],
      ["content-encoding", "gzip"],
      ["date", date2],
    ],
    size: 215,
  },
];
const c5Blocks = [
  `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d
   546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d`,
  "4803 3330 37c1 c0bf",
  `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f
   6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b
   2076 6572 7369 6f6e 3d31`,
];
const c6Blocks = [
  `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7
   8f0b 97c8 e9ae 82ae 43d3`,
  "4883 640e ffc1 c0bf",
  `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335
   dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
];
/** The RFC's examples index every literal. */
const rfcEncoder = (huffman: boolean, maxTableSize = 4096) =>
  createHpackEncoder({ huffman, maxTableSize, noIndexNames: [], sensitiveNames: [] });

describe("HPACK: RFC 7541 Appendix C", () => {
  it("C.2: literal with indexing, without indexing, never indexed, indexed", () => {
    const d = createHpackDecoder();
    expect(pairs(d.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")))).toEqual([
      ["custom-key", "custom-header"],
    ]);
    expect(tableOf(d.table)).toEqual([["custom-key", "custom-header"]]);
    expect(d.table.size).toBe(55);
    const d2 = createHpackDecoder();
    expect(pairs(d2.decode(hex("040c 2f73 616d 706c 652f 7061 7468")))).toEqual([[":path", "/sample/path"]]);
    expect(d2.table.length).toBe(0);
    const d3 = createHpackDecoder();
    expect(pairs(d3.decode(hex("1008 7061 7373 776f 7264 0673 6563 7265 74")))).toEqual([["password", "secret"]]);
    expect(d3.neverIndexed).toEqual([0]);
    expect(d3.table.length).toBe(0);
    expect(pairs(createHpackDecoder().decode(hex("82")))).toEqual([[":method", "GET"]]);
  });

  it("C.3 and C.4: requests decode, and encode to the RFC's bytes, without and with Huffman", () => {
    for (const [huffman, blocks] of [
      [false, c3.map((c) => c.block)],
      [true, c4],
    ] as const) {
      const d = createHpackDecoder();
      const e = rfcEncoder(huffman);
      c3.forEach((c, i) => {
        expect(pairs(d.decode(hex(blocks[i]!)))).toEqual(c.fields);
        expect(d.table.size).toBe(c.size);
        expect(e.encode(flat(c.fields)).toString("hex")).toBe(hex(blocks[i]!).toString("hex"));
      });
      expect(tableOf(d.table)).toEqual([
        ["custom-key", "custom-value"],
        ["cache-control", "no-cache"],
        [":authority", "www.example.com"],
      ]);
    }
  });

  it("C.5 and C.6: responses with a 256-byte table and eviction, without and with Huffman", () => {
    for (const [huffman, blocks] of [
      [false, c5Blocks],
      [true, c6Blocks],
    ] as const) {
      const d = createHpackDecoder({ maxTableSize: 256 });
      const e = rfcEncoder(huffman, 256);
      c5.forEach((c, i) => {
        expect(pairs(d.decode(hex(blocks[i]!)))).toEqual(c.fields);
        expect(tableOf(d.table)).toEqual(c.table);
        expect(d.table.size).toBe(c.size);
        const ours = e.encode(flat(c.fields)).toString("hex");
        if (huffman && i === 1) {
          // "307" Huffman-codes to 3 bytes, no shorter than raw: the RFC uses
          // Huffman there, we send it raw (the same bytes, less CPU).
          expect(ours).toBe("4803333037c1c0bf");
        } else {
          expect(ours).toBe(hex(blocks[i]!).toString("hex"));
        }
        expect(tableOf(e.table)).toEqual(c.table);
      });
    }
  });
});

describe("HPACK: Huffman code", () => {
  it("is a complete prefix code (Kraft sum 1) with the RFC's first and last codes", () => {
    let kraft = 0;
    for (let s = 0; s <= 256; s++) kraft += 2 ** -huffmanLengths[s]!;
    expect(kraft).toBe(1);
    expect(huffmanCodes[48]).toBe(0x0); // '0' 00000
    expect(huffmanCodes[0]).toBe(0x1ff8);
    expect(huffmanCodes[0x5c]).toBe(0x7fff0); // '\'
    expect(huffmanCodes[255]).toBe(0x3ffffee);
    expect(huffmanCodes[256]).toBe(0x3fffffff);
  });

  it("round-trips every byte value", () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString("latin1");
    const out = Buffer.alloc(1024);
    const n = huffmanEncode(all, out, 0);
    const back = Buffer.alloc(2 * n);
    const m = huffmanDecode(out, 0, n, back);
    expect(back.toString("latin1", 0, m)).toBe(all);
  });

  it("interoperates with hpack.js both ways on every byte value", () => {
    const require = createRequire(import.meta.url);
    const hpackjs = require("hpack.js");
    const comp = hpackjs.compressor.create({ table: { size: 4096 } });
    const decomp = hpackjs.decompressor.create({ table: { size: 4096 } });
    const ours = createHpackDecoder();
    const ourEnc = createHpackEncoder();
    for (let start = 0; start < 256; start += 32) {
      const value = Buffer.from(Array.from({ length: 64 }, (_, i) => (start + i * 7) & 0xff)).toString("latin1");
      comp.write([{ name: "x-bytes", value, huffman: true }]);
      expect(pairs(ours.decode(comp.read()))).toEqual([["x-bytes", value]]);
      decomp.write(Buffer.from(ourEnc.encode(["x-text", `${value.length} hello world ${start}`, "x-bytes", value])));
      decomp.execute();
      const got: [string, string][] = [];
      for (let h = decomp.read(); h !== null; h = decomp.read()) got.push([h.name, h.value]);
      expect(got.map(([n]) => n)).toEqual(["x-text", "x-bytes"]);
      expect(got[0]![1]).toBe(`${value.length} hello world ${start}`);
    }
  });

  it("rejects EOS in the data and padding that is not a short prefix of EOS", () => {
    const d = createHpackDecoder();
    // value Huffman-coded as ff ff ff ff: 30 ones = EOS
    expect(() => d.decode(hex("0001 61 84 ffffffff"))).toThrow(CompressionError);
    // 'a' = 00011, padded with zeros
    expect(() => d.decode(hex("0001 61 81 18"))).toThrow(/padding/);
    // '0' = 00000 + 111, then 8 more padding bits
    expect(() => d.decode(hex("0001 61 82 07ff"))).toThrow(/padding/);
    expect(pairs(d.decode(hex("0001 61 81 07")))).toEqual([["a", "0"]]);
  });
});

describe("HPACK: hostile input", () => {
  const rejects = (block: string, message: RegExp, options = {}) => {
    const d = createHpackDecoder(options);
    let err: unknown;
    try {
      d.decode(hex(block));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CompressionError);
    expect((err as CompressionError).code).toBe(0x9);
    expect((err as CompressionError).streamId).toBe(0);
    expect((err as Error).message).toMatch(message);
  };

  it("integer overflow, overlong integers, truncation", () => {
    rejects("ff ffffffff0f", /overflow/);
    rejects("ff 808080808080808001", /too long/);
    rejects("ff", /truncated integer/);
    rejects("ff 80", /truncated integer/);
    rejects("40 05 61", /truncated string/);
    rejects("40 01 61 7f", /truncated/);
    rejects("40", /truncated string/);
    rejects("00 7f ffffff07 61", /truncated string/);
  });

  it("index 0 and indices past the tables", () => {
    rejects("80", /index 0/);
    rejects("be", /index 62/);
    rejects("ff00", /index 127/);
    rejects("7e 01 61", /index 62/); // literal with a name index past the table
  });

  it("table size updates over the limit, after a field, and a required one missing", () => {
    rejects("3fe21f", /4097 over 4096/);
    rejects("82 20", /after a field/);
    const d = createHpackDecoder();
    d.decode(hex("3fe11f 82")); // 4096: allowed
    d.setMaxTableSize(100);
    expect(() => d.decode(hex("82"))).toThrow(/missing the table size update/);
    const d2 = createHpackDecoder();
    d2.decode(hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"));
    d2.setMaxTableSize(0);
    expect(pairs(d2.decode(hex("20 82")))).toEqual([[":method", "GET"]]);
    expect(d2.table.length).toBe(0);
  });

  it("a header list over the limit fails the stream only, keeping the table in step", () => {
    const e = createHpackEncoder();
    const d = createHpackDecoder({ maxHeaderListSize: 200 });
    const big = ["x-big", "v".repeat(120), "x-other", "w".repeat(40)];
    let err: unknown;
    try {
      d.decode(Buffer.from(e.encode(big)));
    } catch (x) {
      err = x;
    }
    expect(err).toBeInstanceOf(HeaderListTooLargeError);
    expect((err as HeaderListTooLargeError).size).toBe(5 + 120 + 32 + 7 + 40 + 32);
    // The next block refers to entries added by the refused one.
    expect(pairs(d.decode(Buffer.from(e.encode(["x-other", "w".repeat(40)]))))).toEqual([["x-other", "w".repeat(40)]]);
  });

  it("random bytes: only CompressionError or HeaderListTooLargeError, and fast", () => {
    let seed = 12345;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed >> 8;
    };
    const d = createHpackDecoder({ maxHeaderListSize: 4096 });
    const t0 = performance.now();
    let ok = 0;
    for (let i = 0; i < 20000; i++) {
      const block = Buffer.alloc(1 + (rand() % 64));
      for (let j = 0; j < block.length; j++) block[j] = rand() & 0xff;
      try {
        d.decode(block);
        ok++;
      } catch (e) {
        if (!(e instanceof CompressionError || e instanceof HeaderListTooLargeError)) throw e;
      }
    }
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(ok).toBeGreaterThan(0);
  });
});

describe("HPACK: encoder choices", () => {
  it("Huffman only where shorter and not over maxHuffmanLength; never-indexed kept for secrets", () => {
    const e = createHpackEncoder({ maxHuffmanLength: 16 });
    const d = createHpackDecoder();
    const token = `Bearer ${"abcdefghij".repeat(10)}`;
    const block = Buffer.from(e.encode(["x-short", "hello world", "authorization", token]));
    expect(d.decode(block)).toEqual(["x-short", "hello world", "authorization", token]);
    expect(d.neverIndexed).toEqual([1]);
    expect(block.includes(Buffer.from(token, "latin1"))).toBe(true); // raw: over 16 chars
    expect(block.includes(Buffer.from("hello world"))).toBe(false); // Huffman-coded
    expect(e.table.length).toBe(1); // only x-short: the token is never indexed
  });

  it("a per-call header's name becomes an index after its first value", () => {
    const e = createHpackEncoder();
    const d = createHpackDecoder();
    const sizes: number[] = [];
    for (const t of ["100m", "200m", "300m"]) {
      const block = Buffer.from(e.encode(["grpc-timeout", t]));
      sizes.push(block.length);
      expect(d.decode(block)).toEqual(["grpc-timeout", t]);
    }
    expect(e.table.length).toBe(1); // the first value only
    expect(sizes[1]).toBeLessThanOrEqual(1 + 1 + 4); // name index, length, value
    expect(sizes[1]).toBeLessThan(sizes[0]!);
  });
});

describe("HPACK: round trips", () => {
  it("random header lists through changing table sizes, with never-indexed fields kept", () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >> 8) % n;
    };
    const names = [":path", "content-type", "x-a", "x-bb", "grpc-timeout", "authorization", "x-long", "te"];
    const e = createHpackEncoder({ maxTableSize: 4096 });
    const d = createHpackDecoder({ maxTableSize: 4096 });
    for (let i = 0; i < 2000; i++) {
      if (i % 300 === 299) {
        const size = [0, 64, 256, 4096][rand(4)]!;
        e.setPeerMaxTableSize(size);
        // The decoder side applies it when its SETTINGS is acked; a shrink
        // needs the encoder's size update, which the next block carries.
        d.setMaxTableSize(size);
      }
      const fields: string[] = [];
      const never: number[] = [];
      const count = 1 + rand(12);
      for (let f = 0; f < count; f++) {
        const name = names[rand(names.length)]!;
        const value =
          name === "x-long"
            ? "z".repeat(rand(3000))
            : Buffer.from(Array.from({ length: rand(20) }, () => rand(256))).toString("latin1");
        if (rand(10) === 0) never.push(f);
        fields.push(name, value);
      }
      const block = Buffer.from(e.encode(fields, never));
      expect(d.decode(block)).toEqual(fields);
      const expectedNever = new Set(never);
      fields.forEach((n, j) => {
        if (j % 2 === 0 && n === "authorization") expectedNever.add(j >> 1);
      });
      expect(new Set(d.neverIndexed)).toEqual(expectedNever);
      expect(d.table.size).toBe(e.table.size);
      expect(d.table.size).toBeLessThanOrEqual(d.table.maxSize);
    }
  });
});
