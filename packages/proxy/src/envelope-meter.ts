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
  const header = Buffer.alloc(5);
  let headerFill = 0;
  let payloadLeft = 0;
  return {
    push(chunk) {
      let i = 0;
      while (i < chunk.length) {
        if (payloadLeft > 0) {
          const take = Math.min(payloadLeft, chunk.length - i);
          payloadLeft -= take;
          i += take;
          continue;
        }
        const take = Math.min(5 - headerFill, chunk.length - i);
        chunk.copy(header, headerFill, i, i + take);
        headerFill += take;
        i += take;
        if (headerFill === 5) {
          headerFill = 0;
          payloadLeft = header.readUInt32BE(1);
          if (payloadLeft > maxMessageBytes) return payloadLeft;
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
