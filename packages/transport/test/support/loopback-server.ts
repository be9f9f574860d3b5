import { once } from "node:events";
import net from "node:net";

/** Test teardown steps, run in reverse after each test. */
export type Cleanups = (() => void | Promise<void>)[];

/**
 * A TCP server on 127.0.0.1 that hands each connection to `onSocket`;
 * resolves with its port. The teardown it adds to `cleanups` destroys the
 * connections still open and closes the server.
 */
export async function listenLoopback(onSocket: (socket: net.Socket) => void, cleanups: Cleanups): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {}); // the client going away is not a failure here
    onSocket(socket);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    server.close();
    await once(server, "close");
  });
  return (server.address() as net.AddressInfo).port;
}
