import { isIPv6 } from "node:net";

/**
 * Parses a listen address: `host:port`, `:port` (all interfaces), or
 * `[ipv6]:port`. Throws a TypeError saying what is accepted.
 */
export function parseListenAddress(address: string): { host: string; port: number } {
  const bad = () =>
    new TypeError(
      `listen address ${JSON.stringify(address)} is not valid: expected HOST:PORT, :PORT or [IPV6]:PORT (port 0-65535)`,
    );
  if (typeof address !== "string") throw bad();
  let host: string;
  let portText: string;
  if (address.startsWith("[")) {
    const close = address.indexOf("]:");
    if (close < 0) throw bad();
    host = address.slice(1, close);
    portText = address.slice(close + 2);
    if (!isIPv6(host)) throw bad();
  } else {
    const colon = address.lastIndexOf(":");
    if (colon < 0) throw bad();
    host = address.slice(0, colon) || "0.0.0.0";
    portText = address.slice(colon + 1);
    if (host.includes(":")) throw bad();
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65_535) throw bad();
  return { host, port: Number(portText) };
}
