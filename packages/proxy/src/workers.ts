import cluster, { type Worker } from "node:cluster";
import type { Logger } from "@meshlite/core";
import { aggregateMetrics, counterTotal } from "./metrics-aggregation.js";
import { type PrimaryMessage, type WorkerMessage, type WorkerQuestion, workerEnv } from "./worker-messages.js";

/** Options of createWorkers. */
export interface WorkersOptions {
  /** Worker processes to run. */
  count: number;
  /** The command-line arguments each worker runs the CLI with (the primary's own). */
  args: readonly string[];
  logger: Logger;
  /** A worker's drain time; one still running `graceMs` + 5 s after the drain began is killed. */
  graceMs: number;
  /** Delay before a worker that died is replaced. Doubles while replacements die within 10 s. Default 100 ms. */
  restartDelayMs?: number;
  /** The longest delay before a replacement. Default 10000 ms. */
  maxRestartDelayMs?: number;
  /** How long the primary waits for a worker's answer (metrics, readiness). Default 2000 ms. */
  askTimeoutMs?: number;
}

/** One worker's state, as `/healthz` shows it. */
export interface WorkerHealth {
  worker: number;
  pid?: number;
  /** Running, listening and answering. */
  up: boolean;
  /** Its proxy is ready (every route has a ready endpoint). */
  ready: boolean;
  routes?: unknown;
}

/** The primary's view of its worker processes. */
export interface Workers {
  /** Forks the workers; resolves once all listen; rejects (and stops them) if one exits first. */
  start(): Promise<{ address: string; port: number }>;
  /** Ready only when every worker is up and ready, and not draining. */
  health(): Promise<{ ready: boolean; workers: WorkerHealth[] }>;
  /** All workers' metrics in one exposition text, plus the primary's own (workers up, restarts). */
  metrics(): Promise<string>;
  /** The routes, as one worker sees them. */
  routes(): Promise<unknown>;
  /** Drains every worker; resolves with the exit code for the primary: 0 when all exited cleanly. */
  drain(): Promise<number>;
}

interface Slot {
  index: number;
  worker?: Worker;
  listening: boolean;
  startedAt: number;
  nextDelayMs: number;
  timer?: NodeJS.Timeout;
  restarts: number;
}

/** A worker that lived this long counts as healthy: its replacement starts after the initial delay again. */
const healthyUptimeMs = 10_000;

/**
 * Runs the proxy in `count` worker processes with node:cluster. Workers call
 * `listen()` as the single process does; the cluster module makes that one
 * listening socket in the primary, which accepts connections and hands them
 * to the workers in turn (round robin), so a client's HTTP/2 connection and
 * every call on it stay with one worker. Each worker has its own upstream
 * connections and pools. The primary serves no calls: it restarts workers that
 * die, answers the admin listener from what the workers report over IPC, and
 * drains them on SIGTERM.
 */
export function createWorkers(options: WorkersOptions): Workers {
  const { logger, count } = options;
  const initialDelayMs = options.restartDelayMs ?? 100;
  const maxDelayMs = options.maxRestartDelayMs ?? 10_000;
  const askTimeoutMs = options.askTimeoutMs ?? 2000;
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index,
    listening: false,
    startedAt: 0,
    nextDelayMs: initialDelayMs,
    restarts: 0,
  }));
  let started = false;
  let draining = false;
  let restartsTotal = 0;
  let nextId = 1;
  const pending = new Map<number, { worker: Worker; resolve: (body: unknown) => void; timer: NodeJS.Timeout }>();
  let onListening: ((slot: Slot, address: { address: string; port: number }) => void) | undefined;
  let onStartupExit: ((slot: Slot, why: string) => void) | undefined;
  let onDrainExit: (() => void) | undefined;
  const exits = new Map<Worker, number | null>();

  cluster.setupPrimary({ args: [...options.args] });

  function fork(slot: Slot) {
    slot.timer = undefined;
    slot.listening = false;
    slot.startedAt = performance.now();
    const worker = cluster.fork({ [workerEnv]: String(slot.index) });
    slot.worker = worker;
    worker.on("message", (message: WorkerMessage) => {
      if (message?.type === "meshlite:listening") {
        slot.listening = true;
        if (started) logger.info("worker restarted", { worker: slot.index, pid: worker.process.pid });
        else onListening?.(slot, message);
      } else if (message?.type === "meshlite:answer") {
        const p = pending.get(message.id);
        if (p === undefined) return;
        pending.delete(message.id);
        clearTimeout(p.timer);
        p.resolve(message.body);
      }
    });
    worker.on("error", (e) => logger.debug("worker IPC error", { worker: slot.index, error: e.message }));
    worker.on("exit", (code, signal) => exited(slot, worker, code, signal));
  }

  function exited(slot: Slot, worker: Worker, code: number | null, signal: string | null) {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.listening = false;
    for (const [id, p] of pending) {
      if (p.worker !== worker) continue;
      pending.delete(id);
      clearTimeout(p.timer);
      p.resolve(undefined);
    }
    const why = signal ?? `code ${code}`;
    if (draining) {
      exits.set(worker, signal ? null : code);
      onDrainExit?.();
      return;
    }
    if (!started) {
      onStartupExit?.(slot, why);
      return;
    }
    const uptimeMs = performance.now() - slot.startedAt;
    if (uptimeMs >= healthyUptimeMs) slot.nextDelayMs = initialDelayMs;
    const delayMs = slot.nextDelayMs;
    slot.nextDelayMs = Math.min(maxDelayMs, delayMs * 2);
    slot.restarts++;
    restartsTotal++;
    logger.warn("worker exited, restarting it", {
      worker: slot.index,
      pid: worker.process.pid,
      exit: why,
      uptimeMs: Math.round(uptimeMs),
      restartInMs: delayMs,
    });
    slot.timer = setTimeout(() => fork(slot), delayMs);
  }

  /** Asks a listening worker; undefined when it does not answer in time or is gone. */
  function ask(slot: Slot, what: WorkerQuestion): Promise<unknown> {
    const worker = slot.worker;
    if (worker === undefined || !slot.listening || !worker.isConnected()) return Promise.resolve(undefined);
    const id = nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve(undefined);
      }, askTimeoutMs);
      pending.set(id, { worker, resolve, timer });
      const message: PrimaryMessage = { type: "meshlite:ask", id, what };
      worker.send(message, (e) => {
        if (e) {
          pending.delete(id);
          clearTimeout(timer);
          resolve(undefined);
        }
      });
    });
  }

  return {
    start() {
      return new Promise((resolve, reject) => {
        let listening = 0;
        onListening = (_slot, address) => {
          if (++listening < count) return;
          started = true;
          onListening = undefined;
          onStartupExit = undefined;
          resolve({ address: address.address, port: address.port });
        };
        onStartupExit = (slot, why) => {
          onListening = undefined;
          onStartupExit = undefined;
          draining = true;
          for (const s of slots) s.worker?.process.kill("SIGKILL");
          reject(new Error(`worker ${slot.index} exited (${why}) before it listened`));
        };
        for (const slot of slots) fork(slot);
      });
    },

    async health() {
      const workers = await Promise.all(
        slots.map(async (slot): Promise<WorkerHealth> => {
          const r = (await ask(slot, "ready")) as { ready: boolean; routes: unknown } | undefined;
          return {
            worker: slot.index,
            ...(slot.worker?.process.pid !== undefined ? { pid: slot.worker.process.pid } : {}),
            up: r !== undefined,
            ready: r?.ready ?? false,
            ...(r ? { routes: r.routes } : {}),
          };
        }),
      );
      return { ready: !draining && workers.every((w) => w.up && w.ready), workers };
    },

    async metrics() {
      const texts = await Promise.all(slots.map((slot) => ask(slot, "metrics")));
      const answered = slots.flatMap((slot, i) =>
        typeof texts[i] === "string" ? [{ worker: String(slot.index), text: texts[i] as string }] : [],
      );
      const own = [
        "# HELP meshlite_proxy_workers Worker processes up (listening and answering the primary).",
        "# TYPE meshlite_proxy_workers gauge",
        `meshlite_proxy_workers ${answered.length}`,
        "# HELP meshlite_proxy_worker_restarts_total Worker processes that died and were replaced.",
        "# TYPE meshlite_proxy_worker_restarts_total counter",
        `meshlite_proxy_worker_restarts_total ${restartsTotal}`,
        "# HELP meshlite_proxy_worker_calls_total Calls finished, by worker (since that worker started).",
        "# TYPE meshlite_proxy_worker_calls_total counter",
        ...answered.map(
          (w) =>
            `meshlite_proxy_worker_calls_total{worker="${w.worker}"} ${counterTotal(w.text, "meshlite_proxy_calls_total")}`,
        ),
        "# HELP meshlite_proxy_primary_resident_memory_bytes Resident set size of the primary process.",
        "# TYPE meshlite_proxy_primary_resident_memory_bytes gauge",
        `meshlite_proxy_primary_resident_memory_bytes ${process.memoryUsage.rss()}`,
      ];
      return `${aggregateMetrics(answered)}${own.join("\n")}\n`;
    },

    async routes() {
      for (const slot of slots) {
        const r = await ask(slot, "routes");
        if (r !== undefined) return r;
      }
      return undefined;
    },

    drain() {
      draining = true;
      for (const slot of slots) clearTimeout(slot.timer);
      const live = slots.flatMap((s) => (s.worker ? [{ worker: s.worker, listening: s.listening }] : []));
      return new Promise((resolve) => {
        const killTimer = setTimeout(() => {
          for (const { worker } of live) {
            if (worker.isDead()) continue;
            logger.error("worker still running after the grace period, killing it", { pid: worker.process.pid });
            worker.process.kill("SIGKILL");
          }
        }, options.graceMs + 5000);
        const done = () => {
          if (!live.every(({ worker }) => exits.has(worker))) return;
          clearTimeout(killTimer);
          onDrainExit = undefined;
          // A worker that was still starting has no calls to lose, however it ended.
          resolve(live.every(({ worker, listening }) => !listening || exits.get(worker) === 0) ? 0 : 1);
        };
        onDrainExit = done;
        const message: PrimaryMessage = { type: "meshlite:drain" };
        for (const { worker, listening } of live) {
          // One still starting may not listen to IPC yet; a signal ends it either way.
          if (listening && worker.isConnected()) worker.send(message, () => {});
          else worker.process.kill("SIGTERM");
        }
        done();
      });
    },
  };
}
