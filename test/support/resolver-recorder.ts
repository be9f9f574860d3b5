import { type Endpoint, endpointKey, type Logger, type ResolverListener } from "@meshlite/core";

/** Collects what a resolver reports and lets a test wait for a condition, woken by each report. */
export interface Recorder {
  readonly listener: ResolverListener;
  readonly sets: { at: number; endpoints: readonly Endpoint[] }[];
  readonly errors: Error[];
  readonly logs: { level: keyof Logger; message: string }[];
  readonly logger: Logger;
  /** The last reported set, as endpointKey strings ("host:port draining" for draining ones), sorted. */
  current(): string[];
  /** Resolves when `condition` holds (checked now and on every report/log), or rejects after `timeoutMs`. */
  until(condition: () => boolean, what: string, timeoutMs?: number): Promise<number>;
  /** Re-checks pending conditions (for conditions on state outside the resolver). */
  wake(): void;
  /** Log lines of a level containing a text. */
  logged(level: keyof Logger, text: string): number;
}

export function describeEndpoints(endpoints: readonly Endpoint[]): string[] {
  return endpoints.map((e) => `${endpointKey(e)}${e.draining ? " draining" : ""}`).sort();
}

export function createRecorder(): Recorder {
  const sets: Recorder["sets"] = [];
  const errors: Error[] = [];
  const logs: Recorder["logs"] = [];
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const waiter of [...waiters]) waiter();
  };
  const log =
    (level: keyof Logger) =>
    (message: string): void => {
      logs.push({ level, message });
      wake();
    };
  const recorder: Recorder = {
    sets,
    errors,
    logs,
    logger: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
    listener: {
      onEndpoints(endpoints) {
        sets.push({ at: performance.now(), endpoints });
        wake();
      },
      onError(error) {
        errors.push(error);
        wake();
      },
    },
    wake,
    current: () => describeEndpoints(sets.at(-1)?.endpoints ?? []),
    until(condition, what, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (condition()) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(performance.now());
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(
              `timed out after ${timeoutMs} ms waiting for ${what}; last set: ${JSON.stringify(recorder.current())}; ` +
                `errors: ${errors.map((e) => e.message).join(" | ")}; logs: ${logs
                  .filter((l) => l.level !== "debug")
                  .map((l) => `${l.level}: ${l.message}`)
                  .join(" | ")}`,
            ),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    logged: (level, text) => logs.filter((l) => l.level === level && l.message.includes(text)).length,
  };
  return recorder;
}
