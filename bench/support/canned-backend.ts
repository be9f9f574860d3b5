import { fileURLToPath } from "node:url";
import { forkReady } from "../../test/support/fork-ready.js";

/** A canned-response gRPC server in a child process (see canned-backend-main.ts). */
export interface CannedBackend {
  /** `host:port` it listens on. */
  readonly address: string;
  /** Kills the process and waits for it to exit. */
  stop(): Promise<void>;
}

const mainScript = fileURLToPath(new URL("./canned-backend-main.ts", import.meta.url));

/** Starts the server on `host` (any 127.0.0.N) and resolves once it listens. */
export async function startCannedBackend(host: string): Promise<CannedBackend> {
  const { child, ready, exited } = await forkReady<{ type: string; address: string }>(mainScript, [host], {
    name: `canned backend on ${host}`,
  });
  return {
    address: ready.address,
    async stop() {
      child.kill();
      await exited;
    },
  };
}
