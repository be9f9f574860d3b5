import { assertKnownKeys } from "@meshlite/core";
import type { KeepaliveOptions } from "@meshlite/transport";

/**
 * Checks keepalive options, for the channel and the proxy's routes: `where`
 * names the option in messages ("createChannel: keepalive", "routes[0].keepalive").
 */
export function validateKeepalive(keepalive: KeepaliveOptions, where: string): void {
  if (typeof keepalive !== "object" || keepalive === null) {
    throw new TypeError(`${where}: expected { intervalMs, timeoutMs?, withoutCalls? }`);
  }
  assertKnownKeys(keepalive, ["intervalMs", "timeoutMs", "withoutCalls"], where);
  for (const key of ["intervalMs", "timeoutMs"] as const) {
    const value = keepalive[key];
    if ((key === "intervalMs" || value !== undefined) && !(typeof value === "number" && value > 0)) {
      throw new TypeError(`${where}.${key}: a positive number of milliseconds, got ${JSON.stringify(value)}`);
    }
  }
}
