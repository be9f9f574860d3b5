import { fileURLToPath } from "node:url";
import { forkReady } from "./fork-ready.js";

/** Options of startBackendProcess. */
export interface BackendProcessOptions {
  /** Port. Default 0: any free port. */
  port?: number;
  /** Latency added to every call from the start, in ms (setDelay changes it). Default 0. */
  delayMs?: number;
  /** stop() kills the process (SIGKILL) when it has not exited this long after. Default: no limit. */
  killAfterMs?: number;
}

/** An echo backend (test/support/echo-backend.ts) running in a child process, so it can be stopped or killed for real. */
export interface BackendProcess {
  readonly host: string;
  readonly port: number;
  /** `host:port`; also the name it puts in its responses. */
  readonly address: string;
  /** Adds this much latency to every call from now on (0 to stop). Resolves once the backend applied it. */
  setDelay(ms: number): Promise<void>;
  /** Fails every call from now on with this gRPC code (0 to stop). Resolves once the backend applied it. */
  setFailCode(code: number): Promise<void>;
  /** A cold start from now: echo calls take `extraMs` more, falling linearly to 0 over `durationMs`. */
  setWarmup(extraMs: number, durationMs: number): Promise<void>;
  /** Fails this share (0-1) of echo calls at once with `code` (default RESOURCE_EXHAUSTED); 0 to stop. */
  setShed(share: number, code?: number): Promise<void>;
  /** GOAWAY on every open connection (as MAX_CONNECTION_AGE does); in-flight calls finish, it keeps listening. */
  goaway(): Promise<void>;
  /**
   * A crash of this backend alone: its connections are destroyed at once and
   * it stops listening (connects are refused); the others of its group keep
   * running. Resolves once it is closed.
   */
  crash(): Promise<void>;
  /** SIGTERM: GOAWAY, in-flight calls finish, exit (see killAfterMs). Resolves on exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL. Resolves on exit. */
  kill(): Promise<void>;
}

const script = fileURLToPath(new URL("../fixtures/backend-process.ts", import.meta.url));

/** Starts an echo backend process on `host` (any 127.0.0.N) and resolves once it listens. */
export async function startBackendProcess(host: string, options: BackendProcessOptions = {}): Promise<BackendProcess> {
  const [backend] = await startBackendGroup([host], options);
  return backend as BackendProcess;
}

/**
 * Starts echo backends on `hosts` in ONE child process, so they are equal by
 * construction: they share one event loop and the CPU the OS gives it, and a
 * busy machine slows them alike (separate processes are scheduled apart, and
 * one can be starved for seconds). setDelay and setFailCode act on one
 * backend; stop and kill end the whole process.
 */
export async function startBackendGroup(
  hosts: readonly string[],
  options: BackendProcessOptions = {},
): Promise<BackendProcess[]> {
  const { child, ready, exited } = await forkReady<{ type: string; ports: number[] }>(
    script,
    [hosts.join(","), String(options.port ?? 0), String(options.delayMs ?? 0)],
    { name: `backend on ${hosts.join(",")}` },
  );

  let nextId = 1;
  const replies = new Map<number, () => void>();
  child.on("message", (message: { id?: number }) => {
    if (message.id === undefined) return;
    replies.get(message.id)?.();
    replies.delete(message.id);
  });
  void exited.then(() => {
    // Whoever waits for a reply from a dead backend is released.
    for (const wake of replies.values()) wake();
    replies.clear();
  });

  /** Sends a command and resolves once the backend confirmed it (or is gone). */
  function ask(command: {
    index: number;
    type: string;
    ms?: number;
    code?: number;
    durationMs?: number;
    share?: number;
  }): Promise<void> {
    if (!child.connected) return Promise.resolve();
    const id = nextId++;
    return new Promise((resolve) => {
      replies.set(id, resolve);
      child.send({ id, ...command });
    });
  }

  let stopping: Promise<void> | undefined;
  function stop() {
    stopping ??= (async () => {
      const timer =
        options.killAfterMs === undefined ? undefined : setTimeout(() => child.kill("SIGKILL"), options.killAfterMs);
      child.kill("SIGTERM");
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  }
  function kill() {
    child.kill("SIGKILL");
    return exited;
  }
  return hosts.map((host, index) => {
    const port = ready.ports[index] as number;
    return {
      host,
      port,
      address: `${host}:${port}`,
      setDelay: (ms) => ask({ index, type: "delay", ms }),
      setFailCode: (code) => ask({ index, type: "fail", code }),
      setWarmup: (ms, durationMs) => ask({ index, type: "warmup", ms, durationMs }),
      setShed: (share, code) => ask({ index, type: "shed", share, ...(code !== undefined ? { code } : {}) }),
      goaway: () => ask({ index, type: "goaway" }),
      crash: () => ask({ index, type: "crash" }),
      stop,
      kill,
    };
  });
}
