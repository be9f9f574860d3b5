import { type ChildProcess, fork } from "node:child_process";

/** Options of forkReady. */
export interface ForkReadyOptions {
  /** Names the child in errors, e.g. `backend on 127.0.0.2`. */
  name: string;
  /** Environment of the child. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Kill the child and give up when it has not said it is ready within this time. Default 15000 ms. */
  startTimeoutMs?: number;
}

/** A child process that has said it is ready. */
export interface ReadyChild<M> {
  readonly child: ChildProcess;
  /** The child's `{ type: "ready", ... }` message. */
  readonly ready: M;
  /** Resolves when the child has exited (also if it had already). */
  readonly exited: Promise<void>;
}

/**
 * Forks a TypeScript script with an IPC channel and resolves once it sends a
 * `{ type: "ready" }` message; rejects if it exits, fails to start or stays
 * silent first. stdout and stderr are the parent's.
 */
export function forkReady<M extends { type: string }>(
  script: string,
  args: readonly string[],
  options: ForkReadyOptions,
): Promise<ReadyChild<M>> {
  const child = fork(script, args, {
    execArgv: tsxExecArgv(),
    env: options.env ?? process.env,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      clearTimeout(timer);
      child.off("exit", onExit);
      child.off("message", onMessage);
      reject(error);
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`${options.name} was not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(new Error(`${options.name} exited (${signal ?? `code ${code}`}) before it was ready`));
    const onMessage = (message: M) => {
      if (message?.type !== "ready") return;
      clearTimeout(timer);
      child.off("exit", onExit);
      child.off("message", onMessage);
      resolve({ child, ready: message, exited });
    };
    child.once("exit", onExit);
    child.once("error", fail);
    child.on("message", onMessage);
  });
}

/**
 * The child runs TypeScript, so it needs the tsx loader. Under `tsx` the
 * parent's execArgv already has it (and works from any directory); otherwise
 * (e.g. in a vitest worker, whose flags are vitest's own) only the loader.
 */
function tsxExecArgv(): string[] {
  const argv = process.execArgv;
  return argv.some((a) => a.includes("tsx")) ? argv : ["--import", "tsx"];
}
