import { CompressionError } from "./h2-error.js";

/**
 * The HPACK Huffman code (RFC 7541 Appendix B). The code is canonical: codes
 * of one length are consecutive in symbol order, and each length's first code
 * follows the previous length's last one. So the bit lengths below (one per
 * symbol 0..255, then EOS = 256) determine every code; the tests check them
 * against Appendix C and against the Kraft equality of a complete code.
 */
// biome-ignore format: a table, 16 symbols a row
const codeLengths = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;

/** Bit length of each symbol's code (0..256). */
export const huffmanLengths: Uint8Array = Uint8Array.from(codeLengths);

/** Each symbol's code, right-aligned (0..256). */
export const huffmanCodes: Uint32Array = (() => {
  const codes = new Uint32Array(257);
  const symbols = Array.from({ length: 257 }, (_, s) => s).sort(
    (a, b) => huffmanLengths[a]! - huffmanLengths[b]! || a - b,
  );
  let code = 0;
  let len = huffmanLengths[symbols[0]!]!;
  for (const s of symbols) {
    const l = huffmanLengths[s]!;
    code *= 2 ** (l - len); // shift left without the 32-bit sign trap
    len = l;
    codes[s] = code;
    code++;
  }
  return codes;
})();

// Decoding: a state machine over 4-bit nibbles. States are the 256 inner
// nodes of the code tree; each (state, nibble) entry holds the next state,
// and at most one emitted symbol (no code is shorter than 5 bits).
const FLAG_EMIT = 1 << 16;
const FLAG_FAIL = 1 << 17;
const transitions = new Uint32Array(256 * 16);
/** 1 where a block may end in this state: at the root, or in at most 7 bits of EOS's prefix (all ones). */
const accepting = new Uint8Array(256);

(() => {
  // Build the tree: inner nodes get ids 0..255 (root 0); leaves are ~symbol.
  const child0: number[] = [0];
  const child1: number[] = [0];
  const depth: number[] = [0];
  const allOnes: boolean[] = [true];
  child0.length = child1.length = 1;
  child0[0] = child1[0] = -1;
  let inner = 1;
  for (let s = 0; s <= EOS; s++) {
    const len = huffmanLengths[s]!;
    const code = huffmanCodes[s]!;
    let node = 0;
    for (let b = len - 1; b >= 0; b--) {
      const bit = Math.floor(code / 2 ** b) & 1;
      const children = bit ? child1 : child0;
      if (b === 0) {
        children[node] = ~s;
      } else {
        let next = children[node]!;
        if (next === -1 || next === undefined) {
          next = inner++;
          child0[next] = -1;
          child1[next] = -1;
          depth[next] = depth[node]! + 1;
          allOnes[next] = allOnes[node]! && bit === 1;
          children[node] = next;
        }
        node = next;
      }
    }
  }
  for (let state = 0; state < 256; state++) {
    accepting[state] = state === 0 || (allOnes[state]! && depth[state]! <= 7) ? 1 : 0;
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let entry = 0;
      for (let b = 3; b >= 0; b--) {
        const next = (nibble >> b) & 1 ? child1[node]! : child0[node]!;
        if (next < 0) {
          const sym = ~next;
          if (sym === EOS) {
            entry = FLAG_FAIL;
            break;
          }
          entry = FLAG_EMIT | (sym << 8);
          node = 0;
        } else {
          node = next;
        }
      }
      transitions[(state << 4) | nibble] = entry & FLAG_FAIL ? FLAG_FAIL : entry | node;
    }
  }
})();

/**
 * Decodes `src[start, end)` into `out` from index 0 and returns the number of
 * bytes written. `out` must hold at least 2 × (end − start) bytes (one symbol
 * per nibble at most). Throws CompressionError on EOS in the data or padding
 * that is not a 0..7-bit prefix of EOS (RFC 7541 section 5.2).
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  let state = 0;
  let o = 0;
  for (let i = start; i < end; i++) {
    const b = src[i]!;
    let e = transitions[(state << 4) | (b >> 4)]!;
    if (e & FLAG_FAIL) throw new CompressionError("Huffman-coded string contains EOS");
    if (e & FLAG_EMIT) out[o++] = (e >> 8) & 0xff;
    state = e & 0xff;
    e = transitions[(state << 4) | (b & 15)]!;
    if (e & FLAG_FAIL) throw new CompressionError("Huffman-coded string contains EOS");
    if (e & FLAG_EMIT) out[o++] = (e >> 8) & 0xff;
    state = e & 0xff;
  }
  if (accepting[state] === 0) throw new CompressionError("Huffman-coded string has invalid padding");
  return o;
}

/** Length in bytes of `s` (latin1: one byte per UTF-16 unit, low 8 bits) once Huffman-coded. */
export function huffmanEncodedLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += huffmanLengths[s.charCodeAt(i) & 0xff]!;
  return (bits + 7) >> 3;
}

/** Huffman-codes `s` (latin1) into `out` at `offset`; returns the offset after it. */
export function huffmanEncode(s: string, out: Uint8Array, offset: number): number {
  let o = offset;
  let acc = 0; // the n < 8 bits not yet written, then up to 31 while a code is added
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const sym = s.charCodeAt(i) & 0xff;
    let code = huffmanCodes[sym]!;
    let len = huffmanLengths[sym]!;
    if (len > 23) {
      // Rare long codes: add the bits above the low 16 first, to stay within 31 bits.
      const high = len - 16;
      acc = (acc << high) | (code >>> 16);
      n += high;
      while (n >= 8) {
        n -= 8;
        out[o++] = (acc >>> n) & 0xff;
      }
      acc &= (1 << n) - 1;
      code &= 0xffff;
      len = 16;
    }
    acc = (acc << len) | code;
    n += len;
    while (n >= 8) {
      n -= 8;
      out[o++] = (acc >>> n) & 0xff;
    }
    acc &= (1 << n) - 1;
  }
  if (n > 0) out[o++] = ((acc << (8 - n)) | ((1 << (8 - n)) - 1)) & 0xff;
  return o;
}
