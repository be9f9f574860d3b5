export { quantile } from "../../bench/support/stats.js";

/** A window of a timed load: calls by server, their latencies and the failures. */
export interface TimedWindow {
  byServer: Map<string, number>;
  latencies: number[];
  failed: number;
  errors: string[];
}

/** A steady call load that records each call's latency, counted in windows (`mark()` starts a new one). */
export interface TimedLoad {
  /** Since the last mark (or the start). */
  window(): TimedWindow;
  /** Everything since the start. */
  total(): TimedWindow;
  mark(): void;
  stop(): Promise<TimedWindow>;
}

function emptyWindow(): TimedWindow {
  return { byServer: new Map(), latencies: [], failed: 0, errors: [] };
}

/** At most `concurrency` calls at once, each worker pausing `intervalMs` between calls. */
export function startTimedLoad(
  call: () => Promise<{ server: string }>,
  { concurrency = 4, intervalMs = 5 }: { concurrency?: number; intervalMs?: number } = {},
): TimedLoad {
  let running = true;
  let current = emptyWindow();
  const all = emptyWindow();
  const add = (w: TimedWindow, server: string | undefined, ms: number, error?: unknown) => {
    if (server === undefined) {
      w.failed++;
      if (w.errors.length < 20) w.errors.push(String(error));
      return;
    }
    w.byServer.set(server, (w.byServer.get(server) ?? 0) + 1);
    w.latencies.push(ms);
  };
  async function worker() {
    while (running) {
      const start = performance.now();
      try {
        const { server } = await call();
        const ms = performance.now() - start;
        add(current, server, ms);
        add(all, server, ms);
      } catch (e) {
        add(current, undefined, 0, e);
        add(all, undefined, 0, e);
      }
      if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
  const workers = Array.from({ length: concurrency }, worker);
  return {
    window: () => current,
    total: () => all,
    mark() {
      current = emptyWindow();
    },
    async stop() {
      running = false;
      await Promise.all(workers);
      return all;
    },
  };
}

/** The share (0..1) of a window's calls served by `servers`. */
export function shareOf(window: TimedWindow, servers: Iterable<string>): number {
  let total = 0;
  for (const n of window.byServer.values()) total += n;
  let part = 0;
  for (const s of servers) part += window.byServer.get(s) ?? 0;
  return total === 0 ? 0 : part / total;
}
