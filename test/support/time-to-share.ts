import { waitFor } from "./wait-for.js";

/** Two running call counts: the calls one backend served, and all calls. */
export interface ShareCounts {
  mine(): number;
  total(): number;
}

/**
 * Waits until the `mine` count grows by at least `share` of the `total`
 * count's growth over a sliding 1 s window (of at least 20 calls); returns
 * the milliseconds from `since` (default: the call) until then. Throws after
 * `timeoutMs` saying `what` did not get there.
 */
export async function timeToShare(
  what: string,
  counts: ShareCounts,
  share: number,
  { since = performance.now(), timeoutMs }: { since?: number; timeoutMs: number },
): Promise<number> {
  const samples: { at: number; mine: number; total: number }[] = [];
  let reachedAt = 0;
  await waitFor(
    `${what} to serve ${share * 100}% of calls`,
    () => {
      const sample = { at: performance.now(), mine: counts.mine(), total: counts.total() };
      samples.push(sample);
      const base = samples.find((s) => s.at >= sample.at - 1000) ?? sample;
      const calls = sample.total - base.total;
      if (calls >= 20 && (sample.mine - base.mine) / calls >= share) {
        reachedAt = sample.at;
        return true;
      }
      return false;
    },
    { timeoutMs, intervalMs: 100 },
  );
  return reachedAt - since;
}
