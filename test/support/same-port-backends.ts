import { type EchoBackend, type EchoBackendOptions, startEchoBackend } from "./echo-backend.js";

/**
 * Echo backends that all listen on one port, each on its own loopback
 * address ("pods" behind one DNS name: a DNS target gives one port for
 * every address). `start(host)` adds one more on the same port later.
 */
export interface SamePortBackends {
  readonly port: number;
  readonly all: EchoBackend[];
  start(host: string): Promise<EchoBackend>;
  closeAll(): Promise<void>;
}

export async function startSamePortBackends(
  hosts: readonly string[],
  options: Omit<EchoBackendOptions, "host" | "port"> = {},
): Promise<SamePortBackends> {
  for (let attempt = 1; ; attempt++) {
    const all: EchoBackend[] = [];
    try {
      const first = await startEchoBackend({ ...options, host: hosts[0] ?? "127.0.0.1" });
      all.push(first);
      for (const host of hosts.slice(1)) {
        all.push(await startEchoBackend({ ...options, host, port: first.port }));
      }
      const port = first.port;
      return {
        port,
        all,
        async start(host) {
          const backend = await startEchoBackend({ ...options, host, port });
          all.push(backend);
          return backend;
        },
        async closeAll() {
          await Promise.all(all.map((b) => b.close()));
        },
      };
    } catch (error) {
      await Promise.all(all.map((b) => b.kill()));
      // The port picked on the first address was taken on another one: try another port.
      if (attempt >= 5 || (error as NodeJS.ErrnoException).code !== "EADDRINUSE") {
        throw error;
      }
    }
  }
}
