import { CompressionError, HeaderListTooLargeError } from "./h2-error.js";
import { createDynamicTable, type DynamicTable } from "./hpack-dynamic-table.js";
import { huffmanDecode } from "./hpack-huffman.js";
import { staticTable, staticTableLength } from "./hpack-static-table.js";

/**
 * Decodes HPACK header blocks (RFC 7541) of one direction of one connection.
 * Fields come out as a flat array of name, value pairs (no object per field);
 * names and values are latin1 strings, one char per octet, so bytes pass
 * through unchanged. Malformed input throws CompressionError and nothing
 * else; the work per block is bounded by the block's length.
 */
export interface HpackDecoder {
  /**
   * Decodes one complete header block (after CONTINUATION assembly) into
   * [name0, value0, name1, value1, ...]. Throws CompressionError (a connection
   * error) or HeaderListTooLargeError (the stream only: the table is kept in
   * step).
   */
  decode(block: Buffer): string[];
  /** Field numbers (pair index: 0 = first field) of the last block's never-indexed fields; usually empty. */
  readonly neverIndexed: readonly number[];
  /**
   * Our SETTINGS_HEADER_TABLE_SIZE changed (apply once the peer acked it).
   * A smaller size requires the peer's next block to start with a size update.
   */
  setMaxTableSize(size: number): void;
  /** The dynamic table, for tests and metrics. */
  readonly table: DynamicTable;
}

/** Options of createHpackDecoder. */
export interface HpackDecoderOptions {
  /** The SETTINGS_HEADER_TABLE_SIZE we advertise: the largest table the peer may make us keep. Default 4096. */
  maxTableSize?: number;
  /** Largest header list (name + value + 32 per field, RFC 9113 section 6.5.2). Default 65536. */
  maxHeaderListSize?: number;
}

const maxInteger = 0x7fffffff;

export function createHpackDecoder(options: HpackDecoderOptions = {}): HpackDecoder {
  let maxTableSize = options.maxTableSize ?? 4096;
  const maxHeaderListSize = options.maxHeaderListSize ?? 65536;
  const table = createDynamicTable(maxTableSize);
  const neverIndexed: number[] = [];
  /** Set when our limit shrank: the next block must start with an update at most this. */
  let requiredUpdate = -1;
  let scratch = Buffer.allocUnsafe(512);

  // Cursor over the block being decoded (one decode at a time).
  let buf: Buffer = scratch;
  let pos = 0;
  let end = 0;

  function readInt(prefixBits: number): number {
    const mask = (1 << prefixBits) - 1;
    let value = buf[pos++]! & mask;
    if (value < mask) return value;
    let shift = 0;
    for (;;) {
      if (pos >= end) throw new CompressionError("truncated integer");
      const b = buf[pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (value > maxInteger) throw new CompressionError("integer overflow");
      if ((b & 0x80) === 0) return value;
      shift += 7;
      if (shift > 28) throw new CompressionError("integer too long");
    }
  }

  function readString(): string {
    if (pos >= end) throw new CompressionError("truncated string");
    const huffman = (buf[pos]! & 0x80) !== 0;
    const len = readInt(7);
    if (len > end - pos) throw new CompressionError("truncated string");
    const start = pos;
    pos += len;
    if (!huffman) return buf.toString("latin1", start, pos);
    if (scratch.length < len * 2) scratch = Buffer.allocUnsafe(len * 2);
    const n = huffmanDecode(buf, start, pos, scratch);
    return scratch.toString("latin1", 0, n);
  }

  function nameAt(index: number): string {
    if (index <= staticTableLength) return staticTable[index - 1]![0];
    const i = index - staticTableLength - 1;
    if (i >= table.length) throw new CompressionError(`index ${index} is past the dynamic table`);
    return table.name(i);
  }

  return {
    table,
    neverIndexed,
    setMaxTableSize(size) {
      if (size < table.maxSize) requiredUpdate = requiredUpdate < 0 ? size : Math.min(requiredUpdate, size);
      maxTableSize = size;
    },
    decode(block) {
      buf = block;
      pos = 0;
      end = block.length;
      if (neverIndexed.length !== 0) neverIndexed.length = 0;
      const fields: string[] = [];
      let listSize = 0;
      let atStart = true;
      let name: string;
      let value: string;
      while (pos < end) {
        const b = buf[pos]!;
        if (b & 0x80) {
          // Indexed field (6.1).
          const index = b < 0xff ? b & 0x7f : readInt(7);
          if (b < 0xff) pos++;
          if (index === 0) throw new CompressionError("index 0");
          if (index <= staticTableLength) {
            const entry = staticTable[index - 1]!;
            name = entry[0];
            value = entry[1];
          } else {
            const i = index - staticTableLength - 1;
            if (i >= table.length) throw new CompressionError(`index ${index} is past the dynamic table`);
            name = table.name(i);
            value = table.value(i);
          }
        } else if (b & 0x40) {
          // Literal with incremental indexing (6.2.1).
          const index = readInt(6);
          name = index === 0 ? readString() : nameAt(index);
          value = readString();
          table.add(name, value);
        } else if (b & 0x20) {
          // Dynamic table size update (6.3): only before the first field.
          if (!atStart) throw new CompressionError("table size update after a field");
          const size = readInt(5);
          if (size > maxTableSize) throw new CompressionError(`table size update to ${size} over ${maxTableSize}`);
          if (requiredUpdate >= 0 && size <= requiredUpdate) requiredUpdate = -1;
          table.resize(size);
          continue;
        } else {
          // Literal without indexing (6.2.2) or never indexed (6.2.3).
          const never = (b & 0x10) !== 0;
          const index = readInt(4);
          name = index === 0 ? readString() : nameAt(index);
          value = readString();
          if (never) neverIndexed.push(fields.length >> 1);
        }
        if (atStart) {
          if (requiredUpdate >= 0) throw new CompressionError("missing the table size update our SETTINGS require");
          atStart = false;
        }
        listSize += name.length + value.length + 32;
        if (listSize <= maxHeaderListSize) fields.push(name, value);
      }
      buf = scratch;
      if (listSize > maxHeaderListSize) {
        neverIndexed.length = 0;
        throw new HeaderListTooLargeError(listSize, maxHeaderListSize);
      }
      return fields;
    },
  };
}
