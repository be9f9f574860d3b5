import * as net from "node:net";
import { createFrameReader, frame } from "./h2-frames.js";

/**
 * A minimal HTTP/2 peer speaking raw frames, for what node:http2 servers
 * cannot be made to do: it answers the client's SETTINGS and, on the first
 * HEADERS frame of each connection, sends GOAWAY with last-stream-id 0 (the
 * stream was not processed) and closes the connection shortly after.
 */
export interface RawGoawayServer {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  /** HEADERS frames (streams) received. */
  streams(): number;
  close(): Promise<void>;
}

export async function startRawGoawayServer(host: string): Promise<RawGoawayServer> {
  let streams = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    socket.write(frame(0x4, 0, 0, Buffer.alloc(0))); // SETTINGS
    socket.on(
      "data",
      createFrameReader((type, flags) => {
        if (type === 0x4 && (flags & 0x1) === 0) {
          socket.write(frame(0x4, 0x1, 0, Buffer.alloc(0))); // SETTINGS ACK
        } else if (type === 0x1) {
          streams++;
          const goaway = Buffer.alloc(8); // last-stream-id 0, NO_ERROR
          socket.write(frame(0x7, 0, 0, goaway));
          setTimeout(() => socket.end(), 50);
        }
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host,
    port,
    address: `${host}:${port}`,
    streams: () => streams,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
