import * as net from "node:net";
import { frame } from "./h2-frames.js";

/** Frame types (RFC 9113 section 6). */
export const FrameType = {
  data: 0,
  headers: 1,
  rstStream: 3,
  settings: 4,
  ping: 6,
  goaway: 7,
  windowUpdate: 8,
  continuation: 9,
} as const;

const flag = { endStream: 0x1, ack: 0x1, endHeaders: 0x4 } as const;

/** What the server sent back, counted. */
export interface RawH2Received {
  /** Frames by type. */
  readonly frames: Map<number, number>;
  /** The error code of the server's first GOAWAY, once one came. */
  goawayCode: number | undefined;
  /** RST_STREAM error codes, by stream. */
  readonly resets: Map<number, number>;
  /** Streams that got a response HEADERS frame. */
  readonly answered: Set<number>;
  /** WINDOW_UPDATE increments summed, by stream (0: the connection). */
  readonly credit: Map<number, number>;
  /** The socket closed. */
  closed: boolean;
}

/**
 * An HTTP/2 client that writes frames as given, for driving the attacks that
 * node:http2 will not send (rapid reset, CONTINUATION floods, control-frame
 * floods, slow readers). Headers are HPACK literals without indexing or
 * Huffman coding, which every decoder accepts.
 */
export interface RawH2Client {
  readonly received: RawH2Received;
  /** Writes bytes as they are (frames built with the helpers below). */
  write(bytes: Buffer): boolean;
  /** A HEADERS frame for a gRPC request on `streamId`. */
  requestHeaders(streamId: number, options?: RequestHeadersOptions): Buffer;
  /** Resolves when the socket has closed (or after `timeoutMs`, to false). */
  waitClosed(timeoutMs: number): Promise<boolean>;
  destroy(): void;
}

export interface RequestHeadersOptions {
  authority?: string;
  path?: string;
  /** Extra header pairs. */
  extra?: Array<[string, string]>;
  endStream?: boolean;
  /** False leaves END_HEADERS off, for a CONTINUATION to follow. Default true. */
  endHeaders?: boolean;
}

/** HPACK integer with an N-bit prefix (RFC 7541 section 5.1). */
function hpackInteger(value: number, prefixBits: number, firstByte: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [firstByte | value];
  const out = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

/** A header block of literal fields without indexing (RFC 7541 section 6.2.2). */
export function headerBlock(pairs: Array<[string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of pairs) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    parts.push(Buffer.from([0, ...hpackInteger(n.length, 7, 0)]), n, Buffer.from(hpackInteger(v.length, 7, 0)), v);
  }
  return Buffer.concat(parts);
}

/** A gRPC message envelope: flags, length, bytes. */
export function envelope(message: Buffer, declaredLength = message.length): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([head, message]);
}

export const frames = {
  settings: (entries: Array<[number, number]> = []) => {
    const payload = Buffer.alloc(entries.length * 6);
    entries.forEach(([id, value], i) => {
      payload.writeUInt16BE(id, i * 6);
      payload.writeUInt32BE(value, i * 6 + 2);
    });
    return frame(FrameType.settings, 0, 0, payload);
  },
  settingsAck: () => frame(FrameType.settings, flag.ack, 0, Buffer.alloc(0)),
  ping: (data = Buffer.alloc(8)) => frame(FrameType.ping, 0, 0, data),
  rst: (streamId: number, code = 8) => {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(code);
    return frame(FrameType.rstStream, 0, streamId, payload);
  },
  data: (streamId: number, payload: Buffer, endStream = false) =>
    frame(FrameType.data, endStream ? flag.endStream : 0, streamId, payload),
  continuation: (streamId: number, block: Buffer, endHeaders = false) =>
    frame(FrameType.continuation, endHeaders ? flag.endHeaders : 0, streamId, block),
  windowUpdate: (streamId: number, increment: number) => {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(increment);
    return frame(FrameType.windowUpdate, 0, streamId, payload);
  },
};

/**
 * Connects, sends the preface and SETTINGS (with `settings`, e.g. a 0 initial
 * window for a reader that never reads), and ACKs the server's SETTINGS
 * (unless `ackSettings` is false).
 * With `readSocket: false` it stops reading the socket after the handshake: a
 * client whose TCP receive window fills up.
 */
/** The `code` of connectRawH2's error when the server closes the connection before its SETTINGS. */
export const closedBeforeHandshake = "ERR_CLOSED_BEFORE_HANDSHAKE";

export async function connectRawH2(
  host: string,
  port: number,
  options: {
    settings?: Array<[number, number]>;
    readSocket?: boolean;
    ackSettings?: boolean;
    localAddress?: string;
  } = {},
): Promise<RawH2Client> {
  const socket = net.connect({ host, port, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  socket.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const received: RawH2Received = {
    frames: new Map(),
    goawayCode: undefined,
    resets: new Map(),
    answered: new Set(),
    credit: new Map(),
    closed: false,
  };
  const closed = new Promise<void>((resolve) =>
    socket.once("close", () => {
      received.closed = true;
      resolve();
    }),
  );
  let buffered: Buffer = Buffer.alloc(0);
  let handshake: (() => void) | undefined;
  const handshaken = new Promise<void>((resolve, reject) => {
    handshake = resolve;
    socket.once("close", () =>
      reject(
        Object.assign(new Error(`connection to ${host}:${port} closed before the HTTP/2 handshake`), {
          code: closedBeforeHandshake,
        }),
      ),
    );
  });
  socket.on("data", (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    while (buffered.length >= 9) {
      const length = buffered.readUIntBE(0, 3);
      if (buffered.length < 9 + length) break;
      const type = buffered[3] as number;
      const flags = buffered[4] as number;
      const streamId = buffered.readUInt32BE(5) & 0x7fffffff;
      const payload = buffered.subarray(9, 9 + length);
      buffered = buffered.subarray(9 + length);
      received.frames.set(type, (received.frames.get(type) ?? 0) + 1);
      if (type === FrameType.settings && (flags & flag.ack) === 0) {
        if (options.ackSettings !== false) socket.write(frames.settingsAck());
        handshake?.();
        if (options.readSocket === false) socket.pause();
      } else if (type === FrameType.goaway) {
        received.goawayCode ??= payload.readUInt32BE(4);
      } else if (type === FrameType.rstStream) {
        received.resets.set(streamId, payload.readUInt32BE(0));
      } else if (type === FrameType.headers) {
        received.answered.add(streamId);
      } else if (type === FrameType.windowUpdate) {
        received.credit.set(streamId, (received.credit.get(streamId) ?? 0) + (payload.readUInt32BE(0) & 0x7fffffff));
      }
    }
  });
  socket.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
  socket.write(frames.settings(options.settings));
  await handshaken;
  return {
    received,
    write: (bytes) => socket.write(bytes),
    requestHeaders(streamId, o = {}) {
      const block = headerBlock([
        [":method", "POST"],
        [":scheme", "http"],
        [":authority", o.authority ?? `${host}:${port}`],
        [":path", o.path ?? "/meshlite.echo.v1.EchoService/Echo"],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
        ...(o.extra ?? []),
      ]);
      const flags = (o.endStream ? flag.endStream : 0) | (o.endHeaders === false ? 0 : flag.endHeaders);
      return frame(FrameType.headers, flags, streamId, block);
    },
    waitClosed(timeoutMs) {
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        void closed.then(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    },
    destroy: () => socket.destroy(),
  };
}
