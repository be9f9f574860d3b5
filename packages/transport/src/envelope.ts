import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { MethodInfo, ResolvedEndpoint } from "./resolved-endpoint.js";

/** Flag bit of a gRPC envelope whose payload is compressed. */
export const flagCompressed = 0b00000001;

/** One gRPC length-prefixed message as read from the wire. */
export interface Frame {
  flags: number;
  data: Uint8Array;
}

/** Frames one message: 1 flag byte, 4 bytes big-endian length, the payload, in a single buffer. */
export function encodeEnvelope(flags: number, data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + data.byteLength);
  frame[0] = flags;
  frame.writeUInt32BE(data.byteLength, 1);
  frame.set(data, 5);
  return frame;
}

/**
 * Serializes and frames one request message, compressed when the endpoint
 * sends compressed messages and it is large enough; a promise only then.
 */
export function frameMessage(
  ep: ResolvedEndpoint,
  info: MethodInfo,
  message: MessageShape<DescMessage>,
): Buffer | Promise<Buffer> {
  const bytes = info.input.serialize(message);
  if (ep.sendCompression !== null && bytes.byteLength >= ep.compressMinBytes) {
    return ep.sendCompression.compress(bytes).then((data) => encodeEnvelope(flagCompressed, data));
  }
  return encodeEnvelope(0, bytes);
}

// Payloads up to this size get a buffer of their announced size at once.
const preallocateMaxBytes = 16 * 1024 * 1024;

/** A plain Uint8Array view of a Buffer's bytes (no copy): bytes fields then are not Buffers. */
function plain(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Receives the envelopes a EnvelopeReader parses. */
export interface FrameSink {
  onFrame(flags: number, data: Uint8Array): void;
}

/**
 * An incremental envelope parser fed with the chunks of an HTTP/2 stream.
 * Payloads that arrive in one chunk are handed out without a copy; larger ones
 * are copied once into a buffer of their announced size (never re-concatenated).
 * A class rather than closures: one is made per call, on the hot path.
 */
export class EnvelopeReader {
  // Header bytes of an envelope split across chunks (rare).
  private header: Buffer | undefined = undefined;
  private headerLength = 0;
  // The payload being assembled across chunks.
  private body: Buffer | Buffer[] | undefined = undefined;
  private bodyLength = 0;
  private bodyOffset = 0;
  private bodyFlags = 0;

  constructor(
    private readonly readMaxBytes: number,
    private readonly sink: FrameSink,
  ) {}

  /** Parses a chunk; calls sink.onFrame for every complete envelope. Returns an error on a bad envelope. */
  push(chunk: Buffer): ConnectError | undefined {
    let pos = 0;
    const end = chunk.byteLength;
    while (pos < end) {
      const body = this.body;
      if (body !== undefined) {
        const take = Math.min(this.bodyLength - this.bodyOffset, end - pos);
        if (Array.isArray(body)) body.push(chunk.subarray(pos, pos + take));
        else chunk.copy(body, this.bodyOffset, pos, pos + take);
        this.bodyOffset += take;
        pos += take;
        if (this.bodyOffset === this.bodyLength) {
          this.body = undefined;
          this.sink.onFrame(this.bodyFlags, plain(Array.isArray(body) ? Buffer.concat(body, this.bodyLength) : body));
        }
        continue;
      }
      let flags: number;
      let length: number;
      const header = this.header;
      if (header !== undefined) {
        while (this.headerLength < 5 && pos < end) header[this.headerLength++] = chunk[pos++]!;
        if (this.headerLength < 5) return undefined;
        flags = header[0]!;
        length = header.readUInt32BE(1);
        this.header = undefined;
        this.headerLength = 0;
      } else if (end - pos < 5) {
        const partial = Buffer.allocUnsafe(5);
        let n = 0;
        while (pos < end) partial[n++] = chunk[pos++]!;
        this.header = partial;
        this.headerLength = n;
        return undefined;
      } else {
        flags = chunk[pos]!;
        length = chunk.readUInt32BE(pos + 1);
        pos += 5;
      }
      if (length > this.readMaxBytes) {
        return new ConnectError(
          `message size ${length} is larger than configured readMaxBytes ${this.readMaxBytes}`,
          Code.ResourceExhausted,
        );
      }
      if (end - pos >= length) {
        this.sink.onFrame(flags, plain(chunk.subarray(pos, pos + length)));
        pos += length;
        continue;
      }
      // Trust an announced length only so far: a huge one is collected as it really arrives.
      this.body = length <= preallocateMaxBytes ? Buffer.allocUnsafe(length) : [];
      this.bodyLength = length;
      this.bodyOffset = 0;
      this.bodyFlags = flags;
    }
    return undefined;
  }

  /** Call at the end of the stream: an error if an envelope was cut short. */
  end(): ConnectError | undefined {
    if (this.header !== undefined || this.body !== undefined) {
      return new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
    }
    return undefined;
  }
}
