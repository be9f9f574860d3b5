import * as net from "node:net";

/**
 * A TCP forwarder in front of a backend. `blackhole()` makes it stop
 * forwarding in both directions without closing anything: the peer looks
 * alive to the kernel but never answers (a dead node, a dropped route).
 */
export interface TcpForwarder {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  blackhole(): void;
  close(): Promise<void>;
}

export async function startTcpForwarder(
  host: string,
  to: { host: string; port: number },
  {
    onClientData,
    port: listenPort = 0,
  }: {
    /** Port to listen on. Default 0 (any free port). */
    port?: number;
    /** Sees every chunk the client sends, per connection (e.g. to count HTTP/2 frames). */
    onClientData?: (connection: net.Socket) => (chunk: Buffer) => void;
  } = {},
): Promise<TcpForwarder> {
  let dropping = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(to);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    const tap = onClientData?.(client);
    client.on("data", (d: Buffer) => {
      tap?.(d);
      if (!dropping) upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!dropping) client.write(d);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => {
      if (!dropping) client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(listenPort, host, resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    host,
    port,
    address: `${host}:${port}`,
    blackhole() {
      dropping = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
