import { clientPreface, Flag, FrameType, frameHeaderLength, minMaxFrameSize } from "./frame-types.js";
import { ErrorCode, H2Error } from "./h2-error.js";
import { createHeaderBlockAssembler, type HeaderBlockAssemblerOptions } from "./header-block.js";
import { readUint32, validateSettings } from "./settings.js";

/**
 * Parses HTTP/2 frames (RFC 9113) out of socket chunks split anywhere, and
 * checks what can be checked of a frame by itself: its size against our
 * SETTINGS_MAX_FRAME_SIZE, the stream-0 rule of its type, fixed payload
 * lengths, padding, SETTINGS values, and that nothing interleaves with a
 * header block. Stream states are the connection's business, not this.
 *
 * The current frame is read from the reader's own fields (no object per
 * frame): `while ((type = reader.next()) !== -1) { ... reader.payload ... }`.
 * Payloads are views (subarrays) of the pushed chunks wherever a frame lies
 * within one chunk, and copies only where it straddles chunks; they stay
 * valid after the next call, as long as the caller does not reuse the chunks
 * it pushed (socket chunks are never reused).
 *
 * Yields DATA, HEADERS (the whole header block, CONTINUATIONs joined),
 * RST_STREAM, SETTINGS, PING, GOAWAY and WINDOW_UPDATE. PRIORITY frames and
 * unknown types are checked and skipped (RFC 9113 sections 5.3.2 and 5.5);
 * PUSH_PROMISE is a PROTOCOL_ERROR, as we never enable push.
 *
 * Errors are thrown as H2Error: streamId 0 is a connection error (send
 * GOAWAY and close: the reader is not usable after it); otherwise a stream
 * error (RST_STREAM that stream), and the frame has been consumed: `next()`
 * may be called again.
 */
export interface FrameReader {
  /** Adds bytes read from the socket. */
  push(chunk: Buffer): void;
  /** Parses the next frame and returns its type, or -1 when more bytes are needed. */
  next(): number;
  /** Our SETTINGS_MAX_FRAME_SIZE: set it once the peer acked a larger one. */
  maxFrameSize: number;
  /** Bytes pushed and not yet parsed. */
  readonly buffered: number;

  // The current frame (valid after next() returned a type):
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  /**
   * DATA: the data without padding. HEADERS: the whole header block without
   * padding and priority fields. SETTINGS: the parameters. PING: the 8 bytes.
   * GOAWAY: the debug data. Others: the payload.
   */
  readonly payload: Buffer;
  /** The frame's payload length, padding included: what a DATA frame counts against flow control. */
  readonly length: number;
  /** DATA, HEADERS: END_STREAM set. */
  readonly endStream: boolean;
  /** SETTINGS, PING: ACK set. */
  readonly ack: boolean;
  /** RST_STREAM, GOAWAY: the error code. */
  readonly errorCode: number;
  /** GOAWAY: the last stream id the peer processed. */
  readonly lastStreamId: number;
  /** WINDOW_UPDATE: the increment (checked non-zero). */
  readonly windowIncrement: number;
  /**
   * HEADERS only: a stream error to answer after the block was decoded (a
   * stream that depends on itself). The block must still go through the
   * HPACK decoder, to keep its table in step, so it is not thrown.
   */
  readonly streamError: H2Error | undefined;
}

/** Options of createFrameReader. */
export interface FrameReaderOptions extends HeaderBlockAssemblerOptions {
  /** Expect the client connection preface first (we are the server). Default false. */
  preface?: boolean;
  /** Our SETTINGS_MAX_FRAME_SIZE. Default 16384. */
  maxFrameSize?: number;
}

const empty: Buffer = Buffer.alloc(0);

export function createFrameReader(options: FrameReaderOptions = {}): FrameReader {
  const assembler = createHeaderBlockAssembler(options);
  let prefaceLeft = options.preface ? clientPreface.length : 0;
  // Unparsed bytes: chunks[0] from `offset`, then the other chunks whole.
  const chunks: Buffer[] = [];
  let offset = 0;
  let buffered = 0;

  /**
   * Makes the first `n` unparsed bytes contiguous in chunks[0] (n <= buffered),
   * copying just those n: the frames after them stay views of their chunks.
   */
  function contiguous(n: number) {
    const first = chunks[0]!;
    if (first.length - offset >= n) return;
    const merged = Buffer.allocUnsafe(n);
    let filled = first.copy(merged, 0, offset);
    chunks.shift();
    while (filled < n) {
      const c = chunks[0]!;
      const take = Math.min(c.length, n - filled);
      c.copy(merged, filled, 0, take);
      filled += take;
      if (take === c.length) chunks.shift();
      else chunks[0] = c.subarray(take);
    }
    chunks.unshift(merged);
    offset = 0;
  }

  function consume(n: number) {
    offset += n;
    buffered -= n;
    while (chunks.length > 0 && offset >= chunks[0]!.length) {
      offset -= chunks[0]!.length;
      chunks.shift();
    }
  }

  function connError(code: number, message: string): never {
    throw new H2Error(code, 0, message);
  }

  function checkPreface(): boolean {
    // Compare what has come so far, so an HTTP/1.1 request fails at once.
    const n = Math.min(prefaceLeft, buffered);
    contiguous(n);
    const start = clientPreface.length - prefaceLeft;
    const c = chunks[0]!;
    for (let i = 0; i < n; i++) {
      if (c[offset + i] !== clientPreface[start + i])
        connError(ErrorCode.PROTOCOL_ERROR, "not the HTTP/2 connection preface");
    }
    consume(n);
    prefaceLeft -= n;
    return prefaceLeft === 0;
  }

  const r = {
    maxFrameSize: options.maxFrameSize ?? minMaxFrameSize,
    get buffered() {
      return buffered;
    },
    type: -1,
    flags: 0,
    streamId: 0,
    payload: empty as Buffer,
    length: 0,
    endStream: false,
    ack: false,
    errorCode: 0,
    lastStreamId: 0,
    windowIncrement: 0,
    streamError: undefined as H2Error | undefined,

    push(chunk: Buffer) {
      if (chunk.length === 0) return;
      chunks.push(chunk);
      buffered += chunk.length;
    },

    next(): number {
      if (prefaceLeft > 0 && !checkPreface()) return -1;
      for (;;) {
        if (buffered < frameHeaderLength) return -1;
        contiguous(frameHeaderLength);
        let c = chunks[0]!;
        let o = offset;
        const length = (c[o]! << 16) | (c[o + 1]! << 8) | c[o + 2]!;
        const type = c[o + 3]!;
        const flags = c[o + 4]!;
        const streamId = readUint32(c, o + 5) & 0x7fffffff;
        // Before waiting for the payload: a huge length must not make us buffer it.
        if (length > r.maxFrameSize) {
          connError(
            ErrorCode.FRAME_SIZE_ERROR,
            `frame of ${length} bytes is over SETTINGS_MAX_FRAME_SIZE ${r.maxFrameSize}`,
          );
        }
        if (assembler.streamId !== 0 && type !== FrameType.CONTINUATION) {
          connError(
            ErrorCode.PROTOCOL_ERROR,
            `frame of type ${type} inside the header block of stream ${assembler.streamId}`,
          );
        }
        if (buffered < frameHeaderLength + length) return -1;
        contiguous(frameHeaderLength + length);
        c = chunks[0]!;
        o = offset + frameHeaderLength;
        const payload = c.subarray(o, o + length);
        consume(frameHeaderLength + length);
        r.type = type;
        r.flags = flags;
        r.streamId = streamId;
        r.length = length;
        r.endStream = false;
        r.ack = false;
        r.streamError = undefined;
        switch (type) {
          case FrameType.DATA:
            if (streamId === 0) connError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
            r.payload = unpad(payload, flags, "DATA");
            r.endStream = (flags & Flag.END_STREAM) !== 0;
            return type;
          case FrameType.HEADERS: {
            if (streamId === 0) connError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
            let fragment = unpad(payload, flags, "HEADERS");
            if (flags & Flag.PRIORITY) {
              if (fragment.length < 5)
                connError(ErrorCode.FRAME_SIZE_ERROR, "HEADERS too short for its priority fields");
              if ((readUint32(fragment, 0) & 0x7fffffff) === streamId) {
                r.streamError = new H2Error(ErrorCode.PROTOCOL_ERROR, streamId, `stream ${streamId} depends on itself`);
              }
              fragment = fragment.subarray(5);
            }
            if ((flags & Flag.END_HEADERS) === 0) {
              assembler.begin(streamId, flags, fragment);
              if (r.streamError) pendingStreamError = r.streamError;
              continue;
            }
            r.payload = fragment;
            r.endStream = (flags & Flag.END_STREAM) !== 0;
            return type;
          }
          case FrameType.CONTINUATION: {
            const block = assembler.append(streamId, payload, (flags & Flag.END_HEADERS) !== 0);
            if (block === undefined) continue;
            r.type = FrameType.HEADERS;
            r.flags = assembler.flags | Flag.END_HEADERS;
            r.payload = block;
            r.endStream = (assembler.flags & Flag.END_STREAM) !== 0;
            r.streamError = pendingStreamError;
            pendingStreamError = undefined;
            return FrameType.HEADERS;
          }
          case FrameType.PRIORITY:
            if (streamId === 0) connError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
            if (length !== 5)
              throw new H2Error(ErrorCode.FRAME_SIZE_ERROR, streamId, "PRIORITY payload is not 5 bytes");
            if ((readUint32(payload, 0) & 0x7fffffff) === streamId) {
              throw new H2Error(ErrorCode.PROTOCOL_ERROR, streamId, `stream ${streamId} depends on itself`);
            }
            continue; // deprecated signal (RFC 9113 section 5.3.2): ignored
          case FrameType.RST_STREAM:
            if (streamId === 0) connError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
            if (length !== 4) connError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM payload is not 4 bytes");
            r.errorCode = readUint32(payload, 0);
            r.payload = payload;
            return type;
          case FrameType.SETTINGS:
            if (streamId !== 0) connError(ErrorCode.PROTOCOL_ERROR, `SETTINGS on stream ${streamId}`);
            r.ack = (flags & Flag.ACK) !== 0;
            if (r.ack && length !== 0) connError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK with a payload");
            if (length % 6 !== 0) connError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS payload not a multiple of 6 bytes");
            validateSettings(payload);
            r.payload = payload;
            return type;
          case FrameType.PUSH_PROMISE:
            connError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE, though push is disabled");
            break;
          case FrameType.PING:
            if (streamId !== 0) connError(ErrorCode.PROTOCOL_ERROR, `PING on stream ${streamId}`);
            if (length !== 8) connError(ErrorCode.FRAME_SIZE_ERROR, "PING payload is not 8 bytes");
            r.ack = (flags & Flag.ACK) !== 0;
            r.payload = payload;
            return type;
          case FrameType.GOAWAY:
            if (streamId !== 0) connError(ErrorCode.PROTOCOL_ERROR, `GOAWAY on stream ${streamId}`);
            if (length < 8) connError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY payload under 8 bytes");
            r.lastStreamId = readUint32(payload, 0) & 0x7fffffff;
            r.errorCode = readUint32(payload, 4);
            r.payload = payload.subarray(8);
            return type;
          case FrameType.WINDOW_UPDATE:
            if (length !== 4) connError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE payload is not 4 bytes");
            r.windowIncrement = readUint32(payload, 0) & 0x7fffffff;
            if (r.windowIncrement === 0) {
              throw new H2Error(ErrorCode.PROTOCOL_ERROR, streamId, "WINDOW_UPDATE with an increment of 0");
            }
            r.payload = payload;
            return type;
          default:
            continue; // unknown types are ignored (RFC 9113 section 5.5)
        }
      }
    },
  };
  let pendingStreamError: H2Error | undefined;

  /** Strips the pad length byte and the padding of a PADDED frame. */
  function unpad(payload: Buffer, flags: number, what: string): Buffer {
    if ((flags & Flag.PADDED) === 0) return payload;
    if (payload.length < 1) connError(ErrorCode.FRAME_SIZE_ERROR, `${what} has PADDED set but no pad length`);
    const pad = payload[0]!;
    if (pad >= payload.length)
      connError(ErrorCode.PROTOCOL_ERROR, `${what} padding of ${pad} bytes is not shorter than its payload`);
    return payload.subarray(1, payload.length - pad);
  }

  return r;
}
