/**
 * meshlite on loopback: backend processes on 127.0.0.2..5 stand in for the pods
 * of a Kubernetes service; each scene runs clients against them and shows
 * where the calls go. Run with `pnpm demo`. Ends by itself in well under a
 * minute; Ctrl-C stops it early and still cleans up.
 */
import type { Logger } from "@meshlite/core";
import type { Channel } from "../../src/index.js";
import { startBackendProcess } from "../../test/support/backend-process.js";
import type { DemoBackend, DemoContext, Scene } from "./scene.js";
import { dnsScaleScene } from "./scene-dns-scale.js";
import { slowBackendScene } from "./scene-slow-backend.js";
import { spreadScene } from "./scene-spread.js";

/** The scenes, in order. A new scene is a scene-*.ts file and one line here. */
const scenes: Scene[] = [spreadScene, slowBackendScene, dnsScaleScene];

const backendHosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];

const tty = process.stdout.isTTY === true;
const bold = (s: string) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (tty ? `\x1b[2m${s}\x1b[0m` : s);

const backends: DemoBackend[] = [];
const channels = new Set<Channel>();
const abort = new AbortController();
let shuttingDown = false;

const logger: Logger = {
  debug() {},
  info() {},
  warn: (message) => {
    if (!shuttingDown) console.warn(`[meshlite] ${message}`);
  },
  error: (message) => {
    if (!shuttingDown) console.error(`[meshlite] ${message}`);
  },
};

async function startBackend(host: string, options: { port?: number } = {}): Promise<DemoBackend> {
  // A graceful stop gets 1 s: a demo that hangs is worse.
  const process = await startBackendProcess(host, { ...options, killAfterMs: 1000 });
  const backend = { address: process.address, host, process };
  backends.push(backend);
  return backend;
}

function killBackends() {
  for (const b of backends) void b.process.kill();
}

// Ctrl-C: stop the scenes, close channels, stop backends. A second Ctrl-C, or
// a cleanup that takes too long, kills the backends and exits at once.
function onSignal(signal: NodeJS.Signals) {
  if (abort.signal.aborted) {
    killBackends();
    process.exit(130);
  }
  console.log(`\n${signal}: stopping`);
  shuttingDown = true;
  abort.abort();
  process.exitCode = 130;
  setTimeout(() => {
    killBackends();
    process.exit(130);
  }, 5000).unref();
}
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
// Whatever happens (an exception, process.exit), no backend outlives the demo.
process.on("exit", killBackends);

const context: DemoContext = {
  get backends() {
    return backends;
  },
  startBackend,
  track(channel) {
    channels.add(channel);
    return channel;
  },
  logger,
  signal: abort.signal,
};

async function main() {
  const started = performance.now();
  console.log(bold("meshlite demo: client-side load balancing for Connect-RPC, on loopback"));
  console.log(dim(`Starting ${backendHosts.length} backend processes (each one a "pod" with its own IP)...`));
  await Promise.all(backendHosts.map((host) => startBackend(host)));
  backends.sort((a, b) => backendHosts.indexOf(a.host) - backendHosts.indexOf(b.host));
  console.log(dim(`Backends: ${backends.map((b) => b.address).join(", ")}`));

  const summary: string[] = [];
  for (const [index, scene] of scenes.entries()) {
    if (abort.signal.aborted) break;
    console.log();
    console.log(bold(`${index + 1}. ${scene.title}`));
    console.log(dim(scene.intro));
    const lines = await scene.run(context);
    summary.push("", bold(`${index + 1}. ${scene.title}`), ...lines);
  }

  if (!abort.signal.aborted) {
    console.log();
    console.log(bold("Summary"));
    for (const line of summary.slice(1)) console.log(line);
    console.log();
    console.log(dim(`Done in ${((performance.now() - started) / 1000).toFixed(1)} s.`));
  }
}

async function cleanup() {
  shuttingDown = true;
  await Promise.all([...channels].map((c) => c.close()));
  await Promise.all(backends.map((b) => b.process.stop()));
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
}

try {
  await main();
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  await cleanup();
}
