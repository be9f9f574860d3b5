/** Raw HTTP/2 frames, for test peers that node:http2 cannot play. */

/** The client connection preface, before its first frame. */
const clientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** One frame: 9-byte header (length, type, flags, stream id) and payload. */
export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([header, payload]);
}

/**
 * Reads the frames of one connection's client-to-server bytes, in whatever
 * chunks they arrive: skips the preface, then calls `onFrame` per whole frame.
 */
export function createFrameReader(onFrame: (type: number, flags: number) => void): (chunk: Buffer) => void {
  let buffered = Buffer.alloc(0);
  let sawPreface = false;
  return (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (!sawPreface) {
      if (buffered.length < clientPreface.length) return;
      buffered = buffered.subarray(clientPreface.length);
      sawPreface = true;
    }
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < 9 + length) return;
      const type = buffered[3] as number;
      const flags = buffered[4] as number;
      buffered = buffered.subarray(9 + length);
      onFrame(type, flags);
    }
  };
}
