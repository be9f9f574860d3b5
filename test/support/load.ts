/** Outcome counts of a steady call load. */
export interface LoadResult {
  ok: number;
  failed: number;
  /** The first 20 errors, as text. */
  errors: string[];
  /** Every error counted by its text (its first 120 characters). */
  errorsByText: Map<string, number>;
  byServer: Map<string, number>;
}

/** A steady stream of calls: at most `concurrency` at once, paced by `intervalMs` between starts per worker. */
export interface Load {
  readonly result: LoadResult;
  /** Counts by server since `mark()`. */
  since(): Map<string, number>;
  mark(): void;
  stop(): Promise<LoadResult>;
}

export function startLoad(
  call: () => Promise<{ server: string }>,
  { concurrency = 4, intervalMs = 5 }: { concurrency?: number; intervalMs?: number } = {},
): Load {
  const result: LoadResult = { ok: 0, failed: 0, errors: [], errorsByText: new Map(), byServer: new Map() };
  let recent = new Map<string, number>();
  let running = true;
  async function worker() {
    while (running) {
      try {
        const { server } = await call();
        result.ok++;
        result.byServer.set(server, (result.byServer.get(server) ?? 0) + 1);
        recent.set(server, (recent.get(server) ?? 0) + 1);
      } catch (e) {
        result.failed++;
        if (result.errors.length < 20) result.errors.push(String(e));
        const text = String(e).slice(0, 120);
        result.errorsByText.set(text, (result.errorsByText.get(text) ?? 0) + 1);
      }
      if (intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
    }
  }
  const workers = Array.from({ length: concurrency }, worker);
  return {
    result,
    since: () => recent,
    mark() {
      recent = new Map();
    },
    async stop() {
      running = false;
      await Promise.all(workers);
      return result;
    },
  };
}
