import { availableParallelism } from "node:os";

/** The default worker count: the CPUs this process may use (cgroup and affinity limits included). */
export function defaultWorkerCount(): number {
  return availableParallelism();
}

/**
 * Checks a worker count from the command line (a string) or a config file
 * (a number); throws a TypeError naming `what` and what is accepted.
 */
export function checkWorkerCount(value: unknown, what: string): number {
  const n = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
    throw new TypeError(
      `${what}: expected an integer >= 1 (worker processes; default ${defaultWorkerCount()}, the CPUs available here), got ${JSON.stringify(value)}`,
    );
  }
  return n;
}
