/**
 * Follows the 5-byte envelope prefixes (flags, uint32 length) of a gRPC,
 * gRPC-web or Connect stream as chunks pass, without copying or decoding the
 * messages, to enforce a message size limit. Work is per message, not per byte.
 */
export interface EnvelopeMeter {
  /** Feeds a chunk; returns the length of a message over the limit, or -1. */
  push(chunk: Buffer): number;
}

export function createEnvelopeMeter(maxMessageBytes: number): EnvelopeMeter {
  // Prefix bytes still to read (5 at a message start), the length read so
  // far, and payload bytes still to skip. No buffer: the length is built byte
  // by byte, as a prefix may straddle chunks.
  let prefixLeft = 5;
  let length = 0;
  let payloadLeft = 0;
  return {
    push(chunk) {
      let i = 0;
      const n = chunk.length;
      while (i < n) {
        if (payloadLeft > 0) {
          const take = Math.min(payloadLeft, n - i);
          payloadLeft -= take;
          i += take;
          continue;
        }
        // Byte 0 of the prefix is the flags; bytes 1-4 the big-endian length.
        if (prefixLeft < 5) length = length * 256 + chunk[i]!;
        prefixLeft--;
        i++;
        if (prefixLeft === 0) {
          if (length > maxMessageBytes) return length;
          payloadLeft = length;
          prefixLeft = 5;
          length = 0;
        }
      }
      return -1;
    },
  };
}

/** For bodies that are one message (Connect unary): the total size counts. */
export function createBodyMeter(maxMessageBytes: number): EnvelopeMeter {
  let total = 0;
  return {
    push(chunk) {
      total += chunk.length;
      return total > maxMessageBytes ? total : -1;
    },
  };
}
