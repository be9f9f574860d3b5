import { clientPreface, Flag, FrameType, frameHeaderLength, minMaxFrameSize } from "./frame-types.js";

/**
 * Appends HTTP/2 frames (RFC 9113) to one buffer, to hand to the socket in
 * one write per I/O turn: `writer.data(...); writer.headers(...);
 * socket.write(writer.take()!)`. Frames are encoded in place in a large
 * chunk; a taken region is never written again (the socket may still hold
 * it), and a new chunk is started when one fills up. DATA and header blocks
 * are split to the peer's SETTINGS_MAX_FRAME_SIZE.
 *
 * The writer does no flow control and checks no stream state: the caller
 * sends DATA only within the windows (see flow-control.ts).
 */
export interface FrameWriter {
  /** The peer's SETTINGS_MAX_FRAME_SIZE. Default 16384. */
  maxFrameSize: number;
  /** Bytes appended and not yet taken. */
  readonly pending: number;
  /** The client connection preface (we are the client); the client's SETTINGS must follow it. */
  preface(): void;
  /** DATA frames for `data` (split to maxFrameSize; an empty one if data is empty); END_STREAM on the last. */
  data(streamId: number, data: Uint8Array, endStream: boolean): void;
  /** HEADERS, then CONTINUATION frames as needed, for one HPACK-coded header block. */
  headers(streamId: number, block: Uint8Array, endStream: boolean): void;
  /** SETTINGS with [id, value, id, value, ...]. */
  settings(values: readonly number[]): void;
  settingsAck(): void;
  /** PING with 8 bytes of opaque data; `ack` answers one. */
  ping(data: Uint8Array, ack: boolean): void;
  /** WINDOW_UPDATE; streamId 0 for the connection. increment 1..2^31-1. */
  windowUpdate(streamId: number, increment: number): void;
  rstStream(streamId: number, errorCode: number): void;
  goaway(lastStreamId: number, errorCode: number, debugData?: Uint8Array): void;
  /** The frames appended since the last take, or undefined if none. */
  take(): Buffer | undefined;
}

/** Options of createFrameWriter. */
export interface FrameWriterOptions {
  /** Size of each buffer chunk frames are encoded into. Default 65536. */
  chunkSize?: number;
}

export function createFrameWriter(options: FrameWriterOptions = {}): FrameWriter {
  const chunkSize = options.chunkSize ?? 65536;
  let chunk = Buffer.allocUnsafe(chunkSize);
  let start = 0; // first byte not yet taken
  let pos = 0;

  /** Room for n more bytes, contiguous with what is pending. */
  function ensure(n: number) {
    if (pos + n <= chunk.length) return;
    const next = Buffer.allocUnsafe(Math.max(chunkSize, pos - start + n));
    chunk.copy(next, 0, start, pos);
    pos -= start;
    start = 0;
    chunk = next;
  }

  function header(length: number, type: number, flags: number, streamId: number) {
    const c = chunk;
    let p = pos;
    c[p++] = length >>> 16;
    c[p++] = (length >>> 8) & 0xff;
    c[p++] = length & 0xff;
    c[p++] = type;
    c[p++] = flags;
    c.writeUInt32BE(streamId & 0x7fffffff, p);
    pos = p + 4;
  }

  function u32(value: number) {
    chunk.writeUInt32BE(value >>> 0, pos);
    pos += 4;
  }

  function bytes(b: Uint8Array, from: number, to: number) {
    // Whole (the usual case): no subarray object made for the copy.
    chunk.set(from === 0 && to === b.length ? b : b.subarray(from, to), pos);
    pos += to - from;
  }

  const w: FrameWriter = {
    maxFrameSize: minMaxFrameSize,
    get pending() {
      return pos - start;
    },
    preface() {
      ensure(clientPreface.length);
      bytes(clientPreface, 0, clientPreface.length);
    },
    data(streamId, data, endStream) {
      const max = w.maxFrameSize;
      let from = 0;
      do {
        const n = Math.min(max, data.length - from);
        const last = from + n === data.length;
        ensure(frameHeaderLength + n);
        header(n, FrameType.DATA, last && endStream ? Flag.END_STREAM : 0, streamId);
        bytes(data, from, from + n);
        from += n;
      } while (from < data.length);
    },
    headers(streamId, block, endStream) {
      const max = w.maxFrameSize;
      let from = 0;
      let type: number = FrameType.HEADERS;
      do {
        const n = Math.min(max, block.length - from);
        const last = from + n === block.length;
        let flags = last ? Flag.END_HEADERS : 0;
        if (type === FrameType.HEADERS && endStream) flags |= Flag.END_STREAM;
        ensure(frameHeaderLength + n);
        header(n, type, flags, streamId);
        bytes(block, from, from + n);
        from += n;
        type = FrameType.CONTINUATION;
      } while (from < block.length);
    },
    settings(values) {
      const n = (values.length >> 1) * 6;
      ensure(frameHeaderLength + n);
      header(n, FrameType.SETTINGS, 0, 0);
      for (let i = 0; i + 1 < values.length; i += 2) {
        chunk.writeUInt16BE(values[i]!, pos);
        pos += 2;
        u32(values[i + 1]!);
      }
    },
    settingsAck() {
      ensure(frameHeaderLength);
      header(0, FrameType.SETTINGS, Flag.ACK, 0);
    },
    ping(data, ack) {
      if (data.length !== 8) throw new RangeError("PING data must be 8 bytes");
      ensure(frameHeaderLength + 8);
      header(8, FrameType.PING, ack ? Flag.ACK : 0, 0);
      bytes(data, 0, 8);
    },
    windowUpdate(streamId, increment) {
      ensure(frameHeaderLength + 4);
      header(4, FrameType.WINDOW_UPDATE, 0, streamId);
      u32(increment & 0x7fffffff);
    },
    rstStream(streamId, errorCode) {
      ensure(frameHeaderLength + 4);
      header(4, FrameType.RST_STREAM, 0, streamId);
      u32(errorCode);
    },
    goaway(lastStreamId, errorCode, debugData) {
      const n = 8 + (debugData?.length ?? 0);
      ensure(frameHeaderLength + n);
      header(n, FrameType.GOAWAY, 0, 0);
      u32(lastStreamId & 0x7fffffff);
      u32(errorCode);
      if (debugData) bytes(debugData, 0, debugData.length);
    },
    take() {
      if (pos === start) return undefined;
      const out = chunk.subarray(start, pos);
      start = pos;
      if (chunk.length - pos < 1024) {
        // Too little left to be worth it: the next frames start a new chunk.
        chunk = Buffer.allocUnsafe(chunkSize);
        start = pos = 0;
      }
      return out;
    },
  };
  return w;
}
