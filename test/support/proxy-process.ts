import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The CLI's bin shim: runs dist when built, else the TypeScript source through tsx. */
export const proxyBin = fileURLToPath(new URL("../../packages/proxy/bin/meshlite-proxy.mjs", import.meta.url));

/** A meshlite-proxy child process. */
export interface ProxyProcess {
  readonly child: ChildProcess;
  /** `host:port` the proxy listens on (from its "listening" log line). */
  readonly address: string;
  /** Admin `host:port`, when started with --admin. */
  readonly admin: string | undefined;
  /** Log lines (JSON) so far. */
  readonly logs: string[];
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts `meshlite-proxy ARGS` and waits for its "listening" line. From the
 * TypeScript source by default (so tests see the current code); `fromSource:
 * false` runs the build (dist) when there is one.
 */
export function startProxyProcess(
  args: string[],
  {
    timeoutMs = 30_000,
    fromSource = true,
    nodeArgs = [],
  }: { timeoutMs?: number; fromSource?: boolean; nodeArgs?: string[] } = {},
): Promise<ProxyProcess> {
  const child = spawn(process.execPath, [...nodeArgs, proxyBin, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, MESHLITE_PROXY_FROM_SOURCE: fromSource ? "1" : "0" },
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`meshlite-proxy did not start within ${timeoutMs} ms; output:\n${logs.join("\n")}`));
    }, timeoutMs);
    let buffered = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (text: string) => {
      buffered += text;
      let nl = buffered.indexOf("\n");
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        logs.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; address?: string; admin?: string };
          if (entry.msg === "listening" && entry.address) {
            clearTimeout(timer);
            resolve({
              child,
              address: entry.address,
              admin: entry.admin,
              logs,
              exited,
              kill: (signal = "SIGTERM") => child.kill(signal),
            });
          }
        } catch {
          // not JSON: a startup error, kept in logs
        }
        nl = buffered.indexOf("\n");
      }
    });
    child.stdout!.resume();
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`meshlite-proxy exited with ${code} before listening; output:\n${logs.join("\n")}${buffered}`));
    });
  });
}
