import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Options of startBackendProcess. */
export interface BackendProcessOptions {
  /** Address to listen on, e.g. 127.0.0.2 (every 127.0.0.N binds on Linux). */
  host: string;
  /** Port. Default 0: any free port. */
  port?: number;
  /** Name the backend puts in its responses. Default: its host:port. */
  name?: string;
  /** Give up when the backend is not listening within this time. Default 15000 ms. */
  startTimeoutMs?: number;
}

/** An echo backend running in a child process. */
export interface BackendProcess {
  /** `host:port` it listens on. */
  readonly address: string;
  readonly pid: number;
  /** Adds this much latency to every call from now on (0 to stop). */
  setDelay(ms: number): Promise<void>;
  /** Closes the server and waits for the process to exit; kills it if it does not. Idempotent. */
  stop(): Promise<void>;
  /** Kills the process at once (SIGKILL). For exit paths that cannot wait. */
  kill(): void;
}

const mainScript = fileURLToPath(new URL("./backend-main.ts", import.meta.url));

/**
 * The child runs TypeScript: it needs the tsx loader. Under `tsx` the parent's
 * execArgv already has it; otherwise it is added.
 */
export function execArgv(): string[] {
  const argv = process.execArgv;
  return argv.some((a) => a.includes("tsx")) ? argv : [...argv, "--import", "tsx"];
}

/** Starts an echo backend process and resolves once it listens. */
export function startBackendProcess(options: BackendProcessOptions): Promise<BackendProcess> {
  const args = [options.host, String(options.port ?? 0), ...(options.name ? [options.name] : [])];
  const child = fork(mainScript, args, { execArgv: execArgv(), stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`backend on ${options.host} did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`backend on ${options.host} exited with code ${code} before listening`));
    };
    child.once("exit", onExit);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("message", (message: { type: string; address: string }) => {
      clearTimeout(timer);
      child.off("exit", onExit);
      if (message.type !== "ready") {
        reject(new Error(`backend on ${options.host} sent ${JSON.stringify(message)} instead of "ready"`));
        return;
      }
      resolve(wrap(child, message.address));
    });
  });
}

function wrap(child: ChildProcess, address: string): BackendProcess {
  let nextId = 1;
  const replies = new Map<number, () => void>();
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  child.on("message", (message: { id?: number; type: string }) => {
    if (message.id !== undefined) {
      replies.get(message.id)?.();
      replies.delete(message.id);
    }
  });
  void exited.then(() => {
    // Whoever waits for a reply from a dead backend is released.
    for (const wake of replies.values()) wake();
    replies.clear();
  });

  function request(message: Record<string, unknown>): Promise<void> {
    if (!child.connected) return Promise.resolve();
    const id = nextId++;
    return new Promise((resolve) => {
      replies.set(id, resolve);
      child.send({ id, ...message });
    });
  }

  let stopping: Promise<void> | undefined;
  return {
    address,
    pid: child.pid ?? -1,
    setDelay: (ms) => request({ type: "delay", ms }),
    stop() {
      stopping ??= (async () => {
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
        void request({ type: "stop" });
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}
