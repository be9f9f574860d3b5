import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { execArgv } from "./backend-process.js";
import type { Recorder } from "./open-loop.js";

/** Options of startGrpcJsClientProcess. */
export interface GrpcJsClientProcessOptions {
  /** A grpc-js target, e.g. `dns://127.0.0.1:5353/orders.demo.test:50051`. */
  target: string;
  /** Calls per second (open loop) once started. */
  rate: number;
  /** Receives the child's counts as they come (about every 200 ms). */
  record: Recorder;
  /** Called with the calls per backend of each report, as they arrive. */
  onCounts?(byServer: ReadonlyMap<string, number>): void;
  /** Give up when the client has no connection within this time. Default 15000 ms. */
  startTimeoutMs?: number;
}

/** A grpc-js round_robin client running in a child process. */
export interface GrpcJsClientProcess {
  /** Starts the calls. */
  start(): void;
  /** Stops starting calls, waits for the last ones and their counts, and for the process to exit. Idempotent. */
  stop(): Promise<void>;
  /** Kills the process at once. */
  kill(): void;
}

const mainScript = fileURLToPath(new URL("./grpc-js-client-main.ts", import.meta.url));

interface Message {
  type: string;
  byServer?: Record<string, number>;
  errors?: number;
  firstError?: string;
}

/** Starts the client process and resolves once its channel is connected. */
export function startGrpcJsClientProcess(options: GrpcJsClientProcessOptions): Promise<GrpcJsClientProcess> {
  const child = fork(mainScript, [options.target, String(options.rate)], {
    execArgv: execArgv(),
    // Read by grpc-js at import: c-ares, which asks the DNS server named in the target.
    env: { ...process.env, GRPC_NODE_USE_ALTERNATIVE_RESOLVER: "true" },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const { record } = options;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.on("message", (message: Message) => {
    if (message.type !== "counts") return;
    const counts = new Map(Object.entries(message.byServer ?? {}));
    for (const [server, n] of counts) record.byServer.set(server, (record.byServer.get(server) ?? 0) + n);
    record.errors += message.errors ?? 0;
    record.firstError ??= message.firstError;
    options.onCounts?.(counts);
  });
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`grpc-js client for ${options.target} not connected within ${timeoutMs} ms`));
    }, timeoutMs);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`grpc-js client for ${options.target} exited with code ${code} before it was ready`));
    };
    child.once("exit", onExit);
    child.on("message", function onReady(message: Message) {
      if (message.type !== "ready") return;
      clearTimeout(timer);
      child.off("exit", onExit);
      child.off("message", onReady);
      let stopping: Promise<void> | undefined;
      const kill = () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      };
      resolve({
        start: () => child.send({ type: "start" }),
        stop() {
          stopping ??= (async () => {
            const timer = setTimeout(kill, 5000);
            if (child.connected) child.send({ type: "stop" });
            await exited;
            clearTimeout(timer);
          })();
          return stopping;
        },
        kill,
      });
    });
  });
}
