import { readFileSync } from "node:fs";
import * as os from "node:os";

/** Reads a cgroup v2 file, undefined when there is none (not Linux, cgroup v1, no limit file). */
function cgroupFile(name: string): string | undefined {
  try {
    return readFileSync(`/sys/fs/cgroup/${name}`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/**
 * The CPUs this process may use: the container's CPU limit (cgroup v2
 * `cpu.max` quota / period) where one is set, else the CPUs Node sees.
 */
export function cpuLimit(): number {
  const [quota, period] = (cgroupFile("cpu.max") ?? "max").split(/\s+/);
  const limit = Number(quota) / Number(period ?? 100_000);
  return Number.isFinite(limit) && limit > 0 ? limit : os.availableParallelism();
}

/** The memory this process may use, bytes: the container's limit (cgroup v2 `memory.max`), else the machine's. */
export function memoryLimitBytes(): number {
  const limit = Number(cgroupFile("memory.max") ?? "max");
  return Number.isFinite(limit) && limit > 0 ? limit : os.totalmem();
}
