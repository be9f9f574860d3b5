import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { assertKnownKeys } from "@meshlite/core";
import { parse as parseYaml } from "yaml";
import { isLogLevel, type LogLevel } from "./json-logger.js";
import { parseListenAddress } from "./listen-address.js";
import {
  limitKeys,
  type ProxyEngine,
  type ProxyOptions,
  proxyEngines,
  type RouteOptions,
  validateProxyOptions,
} from "./proxy-options.js";
import { checkWorkerCount } from "./worker-count.js";

/** A config file's settings: the proxy's options plus the listeners and log level. */
export interface ProxyConfig {
  listen?: string;
  admin?: string;
  logLevel?: LogLevel;
  /** Worker processes (the CLI's `--workers`). */
  workers?: number;
  options: ProxyOptions;
}

/** Thrown for a config file that cannot be used; the message names the file and the problem. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const topKeys = ["listen", "admin", "logLevel", "workers", "engine", "accessLog", "tls", "routes", ...limitKeys];

/**
 * Reads a YAML or JSON config file (JSON is YAML) and validates it. TLS file
 * paths are relative to the file. Example:
 *
 * ```yaml
 * listen: 0.0.0.0:8080
 * admin: 0.0.0.0:9901
 * routes:
 *   - service: shop.orders.v1.OrderService
 *     target: dns:///orders.shop.svc.cluster.local:50051
 *   - authority: users.internal
 *     target: k8s:///users.shop:grpc
 *     balancer: least-request
 * ```
 */
export function loadConfig(path: string): ProxyConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(`cannot read config file ${path}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError(`config file ${path} is not valid YAML/JSON: ${(e as Error).message}`);
  }
  try {
    return parseConfig(doc, dirname(resolve(path)));
  } catch (e) {
    throw new ConfigError(`config file ${path}: ${(e as Error).message}`);
  }
}

/** Validates a parsed config document; relative TLS paths resolve against `baseDir`. */
export function parseConfig(doc: unknown, baseDir: string): ProxyConfig {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new TypeError("expected a mapping with at least `routes: [{ target: ... }]`");
  }
  const d = doc as Record<string, unknown>;
  assertKnownKeys(d, topKeys, "");
  for (const key of ["listen", "admin"] as const) {
    if (d[key] !== undefined) {
      if (typeof d[key] !== "string") throw new TypeError(`${key}: expected "HOST:PORT"`);
      parseListenAddress(d[key]);
    }
  }
  if (d.logLevel !== undefined && !isLogLevel(d.logLevel)) {
    throw new TypeError(`logLevel: expected one of debug, info, warn, error, got ${JSON.stringify(d.logLevel)}`);
  }
  const workers = d.workers !== undefined ? checkWorkerCount(d.workers, "workers") : undefined;
  if (d.accessLog !== undefined && typeof d.accessLog !== "boolean")
    throw new TypeError("accessLog: expected true or false");
  const options: ProxyOptions = { routes: routesWithTlsFiles(d.routes, baseDir) };
  for (const key of limitKeys) {
    if (d[key] !== undefined) options[key] = d[key] as number;
  }
  if (d.accessLog !== undefined) options.accessLog = d.accessLog as boolean;
  if (d.engine !== undefined) {
    if (!proxyEngines.includes(d.engine as ProxyEngine)) {
      throw new TypeError(`engine: expected one of ${proxyEngines.join(", ")}, got ${JSON.stringify(d.engine)}`);
    }
    options.engine = d.engine as ProxyEngine;
  }
  if (d.tls !== undefined) {
    const t = d.tls as Record<string, unknown>;
    if (typeof t !== "object" || t === null || typeof t.cert !== "string" || typeof t.key !== "string") {
      throw new TypeError("tls: expected { cert: FILE, key: FILE, clientCa?: FILE } (PEM files)");
    }
    const read = (file: string, what: string) => readPem(baseDir, file, `tls.${what}`);
    options.tls = {
      cert: read(t.cert, "cert"),
      key: read(t.key, "key"),
      ...(typeof t.clientCa === "string" ? { clientCa: read(t.clientCa, "clientCa") } : {}),
    };
  }
  validateProxyOptions(options);
  return {
    options,
    ...(d.listen !== undefined ? { listen: d.listen as string } : {}),
    ...(d.admin !== undefined ? { admin: d.admin as string } : {}),
    ...(d.logLevel !== undefined ? { logLevel: d.logLevel as LogLevel } : {}),
    ...(workers !== undefined ? { workers } : {}),
  };
}

function readPem(baseDir: string, file: string, where: string): Buffer {
  try {
    return readFileSync(resolve(baseDir, file));
  } catch (e) {
    throw new TypeError(`${where}: cannot read ${file}: ${(e as Error).message}`);
  }
}

/** The PEM files a route's upstream TLS names. */
const routeTlsFiles = ["ca", "cert", "key"] as const;

/**
 * A route's `tls` in a file names PEM files (`ca`, and `cert` + `key` for a
 * client certificate to the upstreams, mTLS), relative to the file: they are
 * read here. Everything else about routes is validated by createProxy.
 */
function routesWithTlsFiles(routes: unknown, baseDir: string): RouteOptions[] {
  if (!Array.isArray(routes)) return routes as RouteOptions[];
  return routes.map((route, i) => {
    const tls = (route as { tls?: unknown } | null)?.tls;
    if (typeof tls !== "object" || tls === null) return route as RouteOptions;
    const files: Record<string, unknown> = { ...tls };
    for (const key of routeTlsFiles) {
      const file = files[key];
      if (file === undefined) continue;
      if (typeof file !== "string") {
        throw new TypeError(`routes[${i}].tls.${key}: expected a PEM file path, got ${JSON.stringify(file)}`);
      }
      files[key] = readPem(baseDir, file, `routes[${i}].tls.${key}`);
    }
    return { ...(route as RouteOptions), tls: files as RouteOptions["tls"] };
  });
}
