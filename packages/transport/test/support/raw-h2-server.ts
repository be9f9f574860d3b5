import type net from "node:net";
import { createFrameReader } from "../../src/h2/frame-reader.js";
import { FrameType } from "../../src/h2/frame-types.js";
import { createFrameWriter, type FrameWriter } from "../../src/h2/frame-writer.js";
import { createHpackDecoder } from "../../src/h2/hpack-decoder.js";
import { createHpackEncoder } from "../../src/h2/hpack-encoder.js";
import { type Cleanups, listenLoopback } from "./loopback-server.js";

/** A frame the client sent, as the raw server read it. */
export interface ClientFrame {
  type: number;
  streamId: number;
  endStream: boolean;
  /** RST_STREAM, GOAWAY. */
  errorCode: number;
  /** HEADERS: the decoded fields. */
  fields?: string[];
  /** DATA: payload bytes. */
  length: number;
}

/** One connection of the raw server: what the client sent, and frames to send it. */
export interface RawConnection {
  readonly frames: ClientFrame[];
  readonly writer: FrameWriter;
  /** A header block for `fields` ([name, value, ...], sent as given, upper-case names too). */
  block(fields: string[]): Uint8Array;
  /** Writes what was appended to the writer. */
  flush(): void;
  readonly socket: net.Socket;
  /** Counts the client's frames of a type (on a stream, or on any). */
  count(type: number, streamId?: number): number;
}

/**
 * An HTTP/2 server on loopback that speaks raw frames (this package's frame
 * reader and writer, and HPACK), for answers node:http2 will not give:
 * malformed responses, frames in the wrong place. It sends an empty
 * SETTINGS first unless `settingsFirst` is false, ACKs the client's
 * SETTINGS unless `ackSettings` is false, and calls `onFrame` for each client frame after recording it.
 */
export async function startRawServer(
  cleanups: Cleanups,
  onFrame: (c: RawConnection, frame: ClientFrame) => void,
  options: { settingsFirst?: boolean; ackSettings?: boolean; onConnection?: (c: RawConnection) => void } = {},
): Promise<{ port: number; connections: RawConnection[] }> {
  const connections: RawConnection[] = [];
  const port = await listenLoopback((socket) => {
    const reader = createFrameReader({ preface: true });
    const decoder = createHpackDecoder();
    const encoder = createHpackEncoder({ huffman: false });
    const writer = createFrameWriter();
    const c: RawConnection = {
      frames: [],
      writer,
      socket,
      block: (fields) => Buffer.from(encoder.encode(fields)),
      flush() {
        const out = writer.take();
        if (out !== undefined && !socket.destroyed) socket.write(out);
      },
      count: (type, streamId) =>
        c.frames.filter((f) => f.type === type && (streamId === undefined || f.streamId === streamId)).length,
    };
    connections.push(c);
    if (options.settingsFirst !== false) {
      writer.settings([]);
      c.flush();
    }
    options.onConnection?.(c);
    socket.on("data", (chunk: Buffer) => {
      reader.push(chunk);
      try {
        for (let type = reader.next(); type !== -1; type = reader.next()) {
          const frame: ClientFrame = {
            type,
            streamId: reader.streamId,
            endStream: reader.endStream,
            errorCode: type === FrameType.RST_STREAM || type === FrameType.GOAWAY ? reader.errorCode : 0,
            length: reader.length,
          };
          if (type === FrameType.HEADERS) frame.fields = decoder.decode(reader.payload);
          c.frames.push(frame);
          if (type === FrameType.SETTINGS && !reader.ack && options.ackSettings !== false) {
            writer.settingsAck();
            c.flush();
          }
          onFrame(c, frame);
        }
      } catch (e) {
        socket.destroy(e as Error);
      }
    });
  }, cleanups);
  return { port, connections };
}
