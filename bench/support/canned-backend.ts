import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** A canned-response gRPC server in a child process (see canned-backend-main.ts). */
export interface CannedBackend {
  /** `host:port` it listens on. */
  readonly address: string;
  /** Kills the process and waits for it to exit. */
  stop(): Promise<void>;
}

const mainScript = fileURLToPath(new URL("./canned-backend-main.ts", import.meta.url));

/** Starts the server on `host` (any 127.0.0.N) and resolves once it listens. */
export function startCannedBackend(host: string): Promise<CannedBackend> {
  const execArgv = process.execArgv.some((a) => a.includes("tsx"))
    ? process.execArgv
    : [...process.execArgv, "--import", "tsx"];
  const child = fork(mainScript, [host], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`canned backend on ${host} did not start within 15 s`));
    }, 15_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`canned backend on ${host} exited with code ${code} before listening`));
    });
    child.once("message", (message: { type: string; address: string }) => {
      clearTimeout(timer);
      resolve({
        address: message.address,
        async stop() {
          child.kill();
          await exited;
        },
      });
    });
  });
}
