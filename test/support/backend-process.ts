import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** An echo backend running in a child process, so it can be killed for real. */
export interface BackendProcess {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  readonly child: ChildProcess;
  /** SIGTERM: GOAWAY, in-flight calls finish, exit. Resolves on exit. */
  terminate(): Promise<void>;
  /** SIGKILL. Resolves on exit. */
  kill(): Promise<void>;
}

const script = fileURLToPath(new URL("../fixtures/backend-process.ts", import.meta.url));

export async function startBackendProcess(host: string, port = 0, delayMs = 0): Promise<BackendProcess> {
  const child = fork(script, [host, String(port), String(delayMs)], {
    execArgv: ["--import", "tsx"],
    stdio: "inherit",
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const listening = await new Promise<number>((resolve, reject) => {
    child.once("message", (m) => resolve((m as { port: number }).port));
    child.once("exit", (code) => reject(new Error(`backend process on ${host} exited with ${code} before listening`)));
  });
  return {
    host,
    port: listening,
    address: `${host}:${listening}`,
    child,
    terminate() {
      child.kill("SIGTERM");
      return exited;
    },
    kill() {
      child.kill("SIGKILL");
      return exited;
    },
  };
}
