import { fileURLToPath } from "node:url";
import { forkReady } from "../../test/support/fork-ready.js";
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
export async function startGrpcJsClientProcess(options: GrpcJsClientProcessOptions): Promise<GrpcJsClientProcess> {
  const { child, exited } = await forkReady<Message>(mainScript, [options.target, String(options.rate)], {
    name: `grpc-js client for ${options.target}`,
    // Read by grpc-js at import: c-ares, which asks the DNS server named in the target.
    env: { ...process.env, GRPC_NODE_USE_ALTERNATIVE_RESOLVER: "true" },
  });
  const { record } = options;
  // Counts come only after start(), so none are missed by listening from here.
  child.on("message", (message: Message) => {
    if (message.type !== "counts") return;
    const counts = new Map(Object.entries(message.byServer ?? {}));
    for (const [server, n] of counts) record.byServer.set(server, (record.byServer.get(server) ?? 0) + n);
    record.errors += message.errors ?? 0;
    record.firstError ??= message.firstError;
    options.onCounts?.(counts);
  });
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  let stopping: Promise<void> | undefined;
  return {
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
  };
}
