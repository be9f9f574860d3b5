import cluster from "node:cluster";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type BalancerName, balancerNames } from "@meshlite/balancers";
import { createProxy } from "./create-proxy.js";
import { createJsonLogger, isLogLevel, type LogLevel } from "./json-logger.js";
import { parseListenAddress } from "./listen-address.js";
import { loadConfig, type ProxyConfig } from "./load-config.js";
import { createPrimaryAdmin } from "./primary-admin.js";
import { defaults, type ProxyEngine, type ProxyOptions, proxyEngines } from "./proxy-options.js";
import { checkWorkerCount, defaultWorkerCount } from "./worker-count.js";
import { workerEnv } from "./worker-messages.js";
import { connectToPrimary } from "./worker-process.js";
import { createWorkers } from "./workers.js";

export const usage = `Usage: meshlite-proxy --listen HOST:PORT --target TARGET [--balancer NAME] [options]
       meshlite-proxy --config FILE [--listen HOST:PORT] [options]

A transparent gRPC / gRPC-web / Connect proxy that balances every call over
the endpoints of a target (one HTTP/2 connection per endpoint).

  --listen HOST:PORT        where clients connect (h2c, TLS, HTTP/1.1); default 0.0.0.0:8080
  --target TARGET           one upstream service: dns:///host:port, host:port,
                            static:///a:p,b:p, ipv4:a:p,b:p, k8s:///svc.ns:port
  --balancer NAME           ${balancerNames.join(" | ")} (default p2c)
  --config FILE             YAML or JSON with routes by :authority and/or gRPC service
  --admin HOST:PORT         admin listener: /healthz, /metrics (Prometheus), /routes
  --tls-cert FILE           serve TLS (ALPN h2, http/1.1) with this certificate chain
  --tls-key FILE            ... and this private key
  --tls-client-ca FILE      require client certificates signed by this CA
  --upstream-tls            TLS to the endpoints (Node's default roots)
  --upstream-ca FILE        TLS to the endpoints, trusting this CA
  --upstream-cert FILE      client certificate chain to present to the endpoints (mTLS)
  --upstream-key FILE       ... and its private key
  --engine NAME             what carries HTTP/2 to clients and endpoints: frames (the proxy's
                            own frame engine) | streams (node:http2); default frames, or
                            MESHLITE_PROXY_ENGINE
  --max-concurrent-streams N  per client connection (default 1000)
  --max-in-flight N         calls in flight in total (default 10000)
  --max-header-bytes N      request header block limit (default 16384)
  --max-message-bytes N     message size limit, either way (default 33554432)
  --grace-ms N              drain time on SIGTERM (default 10000)
  --workers N               processes serving calls on the one listener, each with its own
                            upstream connections (default: the CPUs available, ${defaultWorkerCount()} here);
                            1: a single process, no fork
  --log-level LEVEL         debug | info | warn | error (default info); JSON lines on stderr
  --access-log              log every call
  -h, --help                this text
`;

/** Thrown for bad command-line input. */
class UsageError extends Error {}

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} expects a non-negative integer, got "${value}"`);
  return Number(value);
}

function readFile(flag: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`--${flag}: cannot read ${path}: ${(e as Error).message}`);
  }
}

/**
 * The Kubernetes resolver is its own package (it brings a Kubernetes client);
 * load it when a route needs it and it is installed.
 */
async function loadOptionalResolvers(options: ProxyOptions): Promise<void> {
  if (!options.routes.some((r) => /^(k8s|kubernetes):/.test(r.target))) return;
  const name = "@meshlite/resolver-k8s";
  try {
    await import(name);
  } catch (e) {
    throw new Error(
      `a route has a k8s: target, which needs ${name}: install it next to @meshlite/proxy (${(e as Error).message})`,
    );
  }
}

/** Runs the CLI; resolves once the proxy listens. Exits the process on SIGTERM/SIGINT after draining. */
export async function main(argv: string[]): Promise<void> {
  let config: ProxyConfig;
  let listen: string;
  let admin: string | undefined;
  let logLevel: LogLevel;
  let workers: number;
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        listen: { type: "string" },
        target: { type: "string" },
        balancer: { type: "string" },
        config: { type: "string" },
        admin: { type: "string" },
        "tls-cert": { type: "string" },
        "tls-key": { type: "string" },
        "tls-client-ca": { type: "string" },
        "upstream-tls": { type: "boolean" },
        "upstream-ca": { type: "string" },
        "upstream-cert": { type: "string" },
        "upstream-key": { type: "string" },
        engine: { type: "string" },
        "max-concurrent-streams": { type: "string" },
        "max-in-flight": { type: "string" },
        "max-header-bytes": { type: "string" },
        "max-message-bytes": { type: "string" },
        "grace-ms": { type: "string" },
        "log-level": { type: "string" },
        workers: { type: "string" },
        "access-log": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      process.stdout.write(usage);
      return;
    }
    if ((values.config === undefined) === (values.target === undefined)) {
      throw new UsageError(
        "give either --target (one upstream service) or --config FILE (routes), not both or neither",
      );
    }
    if (values.config !== undefined) {
      if (values.balancer !== undefined)
        throw new UsageError("--balancer goes with --target; with --config set it per route");
      const upstream = ["upstream-tls", "upstream-ca", "upstream-cert", "upstream-key"] as const;
      const given = upstream.find((flag) => values[flag] !== undefined);
      if (given !== undefined) {
        throw new UsageError(`--${given} goes with --target; with --config set tls per route`);
      }
      config = loadConfig(values.config);
    } else {
      if (values.balancer !== undefined && !balancerNames.includes(values.balancer as BalancerName)) {
        throw new UsageError(
          `--balancer: unknown balancer "${values.balancer}"; expected one of ${balancerNames.join(", ")}`,
        );
      }
      const upstreamCa = readFile("upstream-ca", values["upstream-ca"]);
      if ((values["upstream-cert"] === undefined) !== (values["upstream-key"] === undefined)) {
        throw new UsageError("--upstream-cert and --upstream-key go together");
      }
      const cert = readFile("upstream-cert", values["upstream-cert"]);
      const key = readFile("upstream-key", values["upstream-key"]);
      const tls =
        upstreamCa || cert
          ? { ...(upstreamCa ? { ca: upstreamCa } : {}), ...(cert && key ? { cert, key } : {}) }
          : values["upstream-tls"]
            ? true
            : undefined;
      config = {
        options: {
          routes: [
            {
              target: values.target!,
              ...(values.balancer ? { balancer: values.balancer as BalancerName } : {}),
              ...(tls ? { tls } : {}),
            },
          ],
        },
      };
    }
    const options: ProxyOptions = config.options;
    const limits = {
      maxConcurrentStreams: integer("max-concurrent-streams", values["max-concurrent-streams"]),
      maxInFlight: integer("max-in-flight", values["max-in-flight"]),
      maxHeaderBytes: integer("max-header-bytes", values["max-header-bytes"]),
      maxMessageBytes: integer("max-message-bytes", values["max-message-bytes"]),
      graceMs: integer("grace-ms", values["grace-ms"]),
    };
    for (const [key, value] of Object.entries(limits)) {
      if (value !== undefined) options[key as keyof typeof limits] = value;
    }
    if (values["access-log"]) options.accessLog = true;
    if (values.engine !== undefined) {
      if (!proxyEngines.includes(values.engine as ProxyEngine)) {
        throw new UsageError(`--engine: expected one of ${proxyEngines.join(", ")}, got "${values.engine}"`);
      }
      options.engine = values.engine as ProxyEngine;
    }
    if ((values["tls-cert"] === undefined) !== (values["tls-key"] === undefined)) {
      throw new UsageError("--tls-cert and --tls-key go together");
    }
    if (values["tls-cert"] !== undefined) {
      const clientCa = readFile("tls-client-ca", values["tls-client-ca"]);
      options.tls = {
        cert: readFile("tls-cert", values["tls-cert"])!,
        key: readFile("tls-key", values["tls-key"])!,
        ...(clientCa ? { clientCa } : {}),
      };
    } else if (values["tls-client-ca"] !== undefined) {
      throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    listen = values.listen ?? config.listen ?? "0.0.0.0:8080";
    parseListenAddress(listen);
    admin = values.admin ?? config.admin;
    if (admin !== undefined) parseListenAddress(admin);
    const level = values["log-level"] ?? config.logLevel ?? "info";
    if (!isLogLevel(level)) throw new UsageError(`--log-level: expected debug, info, warn or error, got "${level}"`);
    logLevel = level;
    workers =
      values.workers !== undefined
        ? checkWorkerCount(values.workers, "--workers")
        : (config.workers ?? defaultWorkerCount());
  } catch (e) {
    process.stderr.write(`meshlite-proxy: ${(e as Error).message}\nRun meshlite-proxy --help for usage.\n`);
    process.exitCode = 2;
    return;
  }

  // A worker of a primary that runs --workers N: serves calls, no admin listener.
  const workerSlot = cluster.isWorker ? process.env[workerEnv] : undefined;
  if (workerSlot === undefined && workers > 1) return runPrimary(argv, config, admin, logLevel, workers);
  const logger = createJsonLogger({
    level: logLevel,
    ...(workerSlot !== undefined ? { fields: { worker: Number(workerSlot) } } : {}),
  });
  let proxy: ReturnType<typeof createProxy> | undefined;
  const stop = (signal: string) => {
    logger.info(`${signal} received, draining`);
    if (proxy === undefined) process.exit(0);
    proxy.close().then(
      () => process.exit(0),
      (e) => {
        logger.error("error while closing", { error: String(e) });
        process.exit(1);
      },
    );
  };
  // Before the proxy starts, so a drain asked for while it starts is not lost.
  const link = workerSlot !== undefined ? connectToPrimary(() => stop("drain from the primary")) : undefined;
  try {
    await loadOptionalResolvers(config.options);
    proxy = createProxy({ ...config.options, logger });
    const bound = await proxy.listen(listen);
    if (link) {
      link.serve(proxy, bound);
      logger.debug("worker listening", { address: `${bound.address}:${bound.port}`, pid: process.pid });
    } else {
      const adminBound = admin !== undefined ? await proxy.listenAdmin(admin) : undefined;
      logger.info("listening", {
        address: `${bound.address}:${bound.port}`,
        ...(adminBound ? { admin: `${adminBound.address}:${adminBound.port}` } : {}),
        routes: routeSummary(config),
      });
    }
  } catch (e) {
    process.stderr.write(`meshlite-proxy: ${(e as Error).message}\n`);
    process.exitCode = 1;
    // A worker's IPC channel would keep it running.
    if (link) process.exit(1);
    return;
  }
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

function routeSummary(config: ProxyConfig) {
  return config.options.routes.map((r) => ({
    authority: r.authority ?? "*",
    service: r.service ?? "*",
    target: r.target,
  }));
}

/**
 * The primary of `--workers N`: forks the workers (each runs this CLI with the
 * same arguments), serves the admin listener from what they report, replaces
 * workers that die and drains them all on SIGTERM. It serves no calls itself.
 */
async function runPrimary(
  argv: string[],
  config: ProxyConfig,
  admin: string | undefined,
  logLevel: LogLevel,
  count: number,
): Promise<void> {
  const logger = createJsonLogger({ level: logLevel });
  const graceMs = config.options.graceMs ?? defaults.graceMs;
  const workers = createWorkers({ count, args: argv, logger, graceMs });
  const adminListener = createPrimaryAdmin(workers);
  try {
    const bound = await workers.start();
    const adminBound = admin !== undefined ? await adminListener.listen(admin) : undefined;
    logger.info("listening", {
      address: `${bound.address}:${bound.port}`,
      ...(adminBound ? { admin: `${adminBound.address}:${adminBound.port}` } : {}),
      workers: count,
      routes: routeSummary(config),
    });
  } catch (e) {
    process.stderr.write(`meshlite-proxy: ${(e as Error).message}\n`);
    adminListener.close();
    await workers.drain();
    process.exit(1);
  }
  const stop = (signal: string) => {
    logger.info(`${signal} received, draining`, { workers: count });
    adminListener.close();
    workers.drain().then((code) => {
      logger.info("closed", { exitCode: code });
      process.exit(code);
    });
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}
