import { promises as dns } from "node:dns";
import { isIP, isIPv6 } from "node:net";
import {
  type DnsTarget,
  type Endpoint,
  endpointKey,
  formatHostPort,
  type Resolver,
  type ResolverContext,
  type ResolverListener,
  sameEndpoints,
} from "@meshlite/core";
import pRetry from "p-retry";
import { type DnsLookupConfig, type DnsLookupResult, dnsLookup } from "./dns-lookup.js";
import { type ResolvedDnsResolverOptions, resolveDnsResolverOptions } from "./dns-resolver-options.js";
import { lookupServiceConfig, type ServiceConfigLookup } from "./dns-service-config.js";
import { emptyResolvConf, type ResolvConf, readResolvConf, searchNames } from "./resolv-conf.js";

/** A resolution in progress: one p-retry loop of lookups until one succeeds. */
interface Cycle {
  readonly controller: AbortController;
  /** A lookup of this cycle is waiting for the DNS server (else it sleeps in backoff). */
  querying: boolean;
}

/**
 * Creates the resolver of `dns:` targets (and bare `host:port`): looks the
 * name up with c-ares (node:dns Resolver, never getaddrinfo), A and AAAA or
 * SRV, applying the resolv.conf search list and ndots; re-resolves when the
 * answer's TTL expires (at least `minRefreshMs` apart) and at once, rate
 * limited, on `refresh()`; keeps the last good set when a lookup fails.
 *
 * `context.options` takes DnsResolverOptions; bad ones throw here.
 */
export function createDnsResolver(target: DnsTarget, context: ResolverContext): Resolver {
  const options = resolveDnsResolverOptions(context.options ?? {});
  const { logger } = context;
  const host = target.host.replace(/\.$/, "");
  const fixed = fixedEndpoints(host, target.port, options);
  const conf = fixed === undefined ? loadResolvConf(options.resolvConf, context) : undefined;
  const resolver = conf === undefined ? undefined : createCaresResolver(target, options, conf, context);
  const config = conf === undefined ? undefined : lookupConfig(target, options, conf);

  let listener: ResolverListener | undefined;
  let closed = false;
  /** The set last reported; undefined until the first successful lookup. */
  let current: readonly Endpoint[] | undefined;
  let timer: NodeJS.Timeout | undefined;
  /** When the pending timer fires (performance.now() time). */
  let timerAt = Number.POSITIVE_INFINITY;
  let cycle: Cycle | undefined;
  /** refresh() was called while a query was in flight: look again once it is done. */
  let refreshWanted = false;
  /** Start of the last lookup, for the refresh() rate limit. */
  let lastLookupAt = Number.NEGATIVE_INFINITY;
  let failures = 0;
  /** The service config text last reported (gRFC A2); undefined for none. */
  let serviceConfig: string | undefined;

  function schedule(delayMs: number) {
    const at = performance.now() + delayMs;
    if (timer !== undefined && timerAt <= at) {
      return;
    }
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(
      () => {
        timer = undefined;
        timerAt = Number.POSITIVE_INFINITY;
        startCycle();
      },
      Math.max(0, delayMs),
    );
    timer.unref();
  }

  function rateLimitDelay(): number {
    return Math.max(0, lastLookupAt + options.refreshRateLimitMs - performance.now());
  }

  function startCycle() {
    if (closed || resolver === undefined || config === undefined) {
      return;
    }
    clearTimeout(timer);
    timer = undefined;
    timerAt = Number.POSITIVE_INFINITY;
    const own: Cycle = { controller: new AbortController(), querying: false };
    cycle = own;
    pRetry(
      async () => {
        refreshWanted = false;
        lastLookupAt = performance.now();
        own.querying = true;
        try {
          // The TXT query runs beside the address lookup and never fails it.
          const [result, txt] = await Promise.all([
            dnsLookup(resolver, config),
            options.serviceConfig ? lookupServiceConfig(resolver, host) : undefined,
          ]);
          return { result, txt };
        } catch (error) {
          // p-retry gives up on a TypeError; a resolver must not, whatever failed.
          throw error instanceof TypeError ? new Error(error.message, { cause: error }) : error;
        } finally {
          own.querying = false;
        }
      },
      {
        retries: Number.POSITIVE_INFINITY,
        factor: 2,
        minTimeout: options.retryInitialMs,
        maxTimeout: options.retryMaxMs,
        randomize: true,
        unref: true,
        signal: own.controller.signal,
        onFailedAttempt: ({ error }) => {
          if (!own.controller.signal.aborted) {
            failed(error);
          }
        },
      },
    ).then(
      ({ result, txt }) => {
        if (cycle === own) {
          cycle = undefined;
          succeeded(result);
          if (txt !== undefined) serviceConfigFound(txt);
        }
      },
      (error: unknown) => {
        // Aborted by close() or by refresh() restarting the cycle; anything else is a bug,
        // after which the resolver starts over rather than stop following the name.
        if (!own.controller.signal.aborted && cycle === own) {
          cycle = undefined;
          logger.error(`dns resolver for "${target.raw}" failed unexpectedly; retrying`, { error });
          schedule(options.retryMaxMs);
        }
      },
    );
  }

  function succeeded(result: DnsLookupResult) {
    if (closed) {
      return;
    }
    if (failures > 0) {
      logger.info(`DNS name "${host}" resolves again`, { target: target.raw, failures });
      failures = 0;
    }
    let endpoints = result.endpoints;
    if (result.failedFamilies.length > 0 && current !== undefined) {
      // One family's query failed while the other answered: its addresses
      // are unknown, not gone; keep the ones we had.
      const keep = current.filter((e) => result.failedFamilies.includes(isIPv6(e.host) ? 6 : 4));
      const seen = new Set(endpoints.map(endpointKey));
      endpoints = [...endpoints, ...keep.filter((e) => !seen.has(endpointKey(e)))];
      logger.warn(`DNS lookup of "${host}" failed for IPv${result.failedFamilies.join("/")}; keeping those addresses`, {
        target: target.raw,
      });
    }
    report(endpoints);
    const ttlMs = result.ttlSeconds === undefined ? 0 : result.ttlSeconds * 1000;
    const base = Math.min(Math.max(ttlMs, options.minRefreshMs), options.maxRefreshMs);
    schedule(base * (1 + options.refreshJitter * Math.random()));
    if (refreshWanted) {
      refreshWanted = false;
      schedule(rateLimitDelay());
    }
  }

  function serviceConfigFound(txt: ServiceConfigLookup) {
    if (closed) return;
    if (txt.error !== undefined) {
      logger.warn(`DNS TXT lookup of _grpc_config.${host} failed: ${txt.error.message}; keeping the service config`, {
        target: target.raw,
      });
      return;
    }
    if (txt.text === serviceConfig) return;
    serviceConfig = txt.text;
    listener?.onServiceConfig?.(txt.text);
  }

  function failed(error: Error) {
    if (closed) {
      return;
    }
    failures++;
    if (current === undefined || current.length === 0) {
      // Nothing to serve from: the channel shows this in the errors of calls.
      listener?.onError(error);
    } else if (failures === 1) {
      logger.warn(`${error.message}; keeping the last ${current.length} endpoint(s) and retrying`, {
        target: target.raw,
      });
    } else {
      logger.debug(`${error.message} (failure ${failures}); still retrying`, { target: target.raw });
    }
  }

  function report(endpoints: readonly Endpoint[]) {
    if (current !== undefined && sameEndpoints(current, endpoints)) {
      return;
    }
    const previous = current;
    current = endpoints;
    logger.debug(`DNS name "${host}" resolved`, {
      target: target.raw,
      endpoints: endpoints.map(endpointKey),
      previous: previous?.map(endpointKey),
    });
    listener?.onEndpoints(endpoints);
  }

  return {
    start(l) {
      if (listener !== undefined) {
        throw new Error(`dns resolver for "${target.raw}" was already started`);
      }
      if (closed) {
        throw new Error(`dns resolver for "${target.raw}" is closed`);
      }
      listener = l;
      if (fixed !== undefined) {
        // An IP literal (or localhost) needs no query and never changes.
        queueMicrotask(() => {
          if (!closed) {
            report(fixed);
          }
        });
        return;
      }
      startCycle();
    },
    refresh() {
      if (closed || listener === undefined || fixed !== undefined) {
        return;
      }
      if (cycle !== undefined) {
        if (cycle.querying) {
          // The answer on its way may predate the event; look again after it.
          refreshWanted = true;
          return;
        }
        // Sleeping in backoff after a failure: try again now (rate limited).
        const sleeping = cycle;
        cycle = undefined;
        sleeping.controller.abort();
      }
      schedule(rateLimitDelay());
    },
    close() {
      if (closed) {
        return;
      }
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      cycle?.controller.abort();
      cycle = undefined;
      resolver?.cancel();
    },
  };
}

/** IP literals and localhost resolve without a query. */
function fixedEndpoints(host: string, port: number, options: ResolvedDnsResolverOptions): Endpoint[] | undefined {
  if (isIP(host)) {
    return [{ host, port }];
  }
  if (host.toLowerCase() === "localhost" || host.toLowerCase().endsWith(".localhost")) {
    // RFC 6761: localhost names are loopback, not asked of DNS.
    const v4 = { host: "127.0.0.1", port };
    const v6 = { host: "::1", port };
    switch (options.family) {
      case "ipv4":
      case "prefer-ipv4":
        return [v4];
      case "ipv6":
      case "prefer-ipv6":
        return [v6];
      default:
        return [v4, v6];
    }
  }
  return undefined;
}

function loadResolvConf(path: string, context: ResolverContext): ResolvConf {
  try {
    return readResolvConf(path);
  } catch (error) {
    context.logger.warn(`${(error as Error).message}; using no search list, ndots 1 and the system's name servers`);
    return emptyResolvConf;
  }
}

function createCaresResolver(
  target: DnsTarget,
  options: ResolvedDnsResolverOptions,
  conf: ResolvConf,
  context: ResolverContext,
): dns.Resolver {
  const resolver = new dns.Resolver({ timeout: options.timeoutMs, tries: options.tries });
  if (target.dnsServer !== undefined) {
    resolver.setServers([formatHostPort(target.dnsServer.host, target.dnsServer.port)]);
    return resolver;
  }
  const servers = conf.nameservers.filter((server) => isIP(server) !== 0);
  if (servers.length > 0) {
    try {
      resolver.setServers(servers);
    } catch (error) {
      context.logger.warn(
        `cannot use the name servers of ${options.resolvConf} (${servers.join(", ")}): ${(error as Error).message}; using the system's`,
      );
    }
  }
  return resolver;
}

function lookupConfig(target: DnsTarget, options: ResolvedDnsResolverOptions, conf: ResolvConf): DnsLookupConfig {
  const search = options.search ?? conf.search;
  const ndots = options.ndots ?? conf.ndots;
  let name = target.host;
  if (typeof options.srv === "string") {
    name = `${options.srv.replace(/\.$/, "")}.${name}`;
  }
  return {
    host: target.host,
    names: searchNames(name, search, ndots),
    port: target.port,
    family: options.family,
    srv: options.srv !== false,
    acceptEmpty: options.acceptEmpty,
  };
}
