import {
  type Balancer,
  type Endpoint,
  endpointKey,
  type Logger,
  type PeakEwmaOptions,
  type Resolver,
  type Target,
} from "@meshlite/core";
import type { Http2Connection } from "@meshlite/transport";
import type { ChannelEventHandler } from "./channel-event.js";
import { ejectionTime, failureRateOutliers, type ResolvedOutlierDetection } from "./outlier-detection.js";
import { type CallOutcome, createSubchannel, type Subchannel } from "./subchannel.js";

/**
 * Watches the health of a ready endpoint and reports each status; returns a
 * function that stops watching. Supplied by the channel (it speaks gRPC).
 */
export type HealthWatcher = (
  subchannel: Subchannel,
  report: (status: "serving" | "not-serving" | "unimplemented") => void,
) => () => void;

/** Options of createEndpointPool. */
export interface EndpointPoolOptions {
  readonly target: Target;
  readonly resolver: Resolver;
  readonly balancer: Balancer;
  /** Makes the connection of a new endpoint (not yet connected). */
  createConnection(endpoint: Endpoint): Http2Connection;
  readonly loadOptions?: PeakEwmaOptions;
  /** Passive outlier detection; false turns it off. */
  readonly outlierDetection: ResolvedOutlierDetection | false;
  /** Active health checking; undefined turns it off. */
  readonly healthWatcher?: HealthWatcher;
  readonly logger: Logger;
  readonly onEvent?: ChannelEventHandler;
}

/** Why no endpoint could be picked. */
export class NoEndpointError extends Error {
  override name = "NoEndpointError";
  constructor(
    message: string,
    readonly reason: "deadline" | "aborted" | "closed",
  ) {
    super(message);
  }
}

/**
 * The balancing core, free of any message layer: follows the resolver's
 * endpoint set, keeps a connection per endpoint (or only the first, for
 * pick-first), drains endpoints that leave, leaves out unhealthy and ejected
 * ones, and picks one per call with the balancer. The channel puts Connect
 * calls on top; the proxy raw streams.
 */
export interface EndpointPool {
  /** Picks a ready endpoint now, preferring one other than `avoid`; undefined when none is ready. */
  tryPick(avoid?: Subchannel): Subchannel | undefined;
  /**
   * Waits for a ready endpoint until `deadline` (ms, performance.now() clock)
   * or the signal aborts. Throws NoEndpointError with a message that names the
   * target and the last error.
   */
  waitForPick(deadline: number, signal: AbortSignal | undefined, avoid?: Subchannel): Promise<Subchannel>;
  /** Active endpoints in the resolver's order, then draining ones. */
  subchannels(): Subchannel[];
  /** Whether an endpoint is ejected by outlier detection now. */
  isEjected(subchannel: Subchannel): boolean;
  /** The last resolver or connection error, for messages. */
  lastError(): string | undefined;
  /**
   * Starts closing: stops resolving and fails the calls waiting for an
   * endpoint. Calls that picked one, or pick one now, still go out.
   */
  beginClose(): void;
  /** Closes every connection, resetting what is still in flight. */
  destroy(): Promise<void>;
}

export function createEndpointPool(options: EndpointPoolOptions): EndpointPool {
  const { target, resolver, balancer, logger, outlierDetection: outliers, healthWatcher } = options;
  const emit = options.onEvent ?? (() => {});
  const active = new Map<string, Subchannel>();
  const draining = new Set<Subchannel>();
  const cleanups = new Map<Subchannel, Array<() => void>>();
  const stopHealth = new Map<Subchannel, () => void>();
  const timers = new Set<NodeJS.Timeout>();
  let ready: Subchannel[] = [];
  let readyDirty = true;
  const waiters = new Set<() => void>();
  let closed = false;
  let resolved = false;
  let resolverError: Error | undefined;
  let connectionError: Error | undefined;

  function changed() {
    readyDirty = true;
    if (balancer.connect === "first") connectFirst();
    if (waiters.size > 0 && readyList().length > 0) wakeAll();
  }

  function wakeAll() {
    for (const wake of [...waiters]) wake();
  }

  function isEjected(sc: Subchannel, now = performance.now()): boolean {
    return sc.outlier.ejectedUntil > now;
  }

  function usable(sc: Subchannel): boolean {
    return sc.state() === "ready" && (sc.health === "serving" || sc.health === "disabled");
  }

  function readyList(): Subchannel[] {
    if (readyDirty) {
      const now = performance.now();
      const candidates = [...active.values()].filter(usable);
      const healthy = candidates.filter((sc) => !isEjected(sc, now));
      const panic = outliers !== false && healthy.length < candidates.length * (outliers.panicThresholdPercent / 100);
      ready = panic ? candidates : healthy;
      readyDirty = false;
    }
    return ready;
  }

  // pick-first: keep connected only the first endpoint, in order, that is not failing.
  function connectFirst() {
    for (const sc of active.values()) {
      const state = sc.state();
      if (state === "ready" || state === "connecting") return;
      if (state === "idle") {
        sc.connection.connect();
        return;
      }
    }
  }

  function schedule(ms: number, fn: () => void) {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timer.unref();
    timers.add(timer);
  }

  function eject(sc: Subchannel, reason: "consecutive-failures" | "failure-rate") {
    if (outliers === false || isEjected(sc) || sc.draining) return;
    const all = [...active.values()];
    const ejectedNow = all.filter((s) => isEjected(s)).length;
    if (((ejectedNow + 1) / all.length) * 100 > outliers.maxEjectionPercent) return;
    sc.outlier.ejections++;
    const durationMs = ejectionTime(outliers, sc.outlier.ejections);
    sc.outlier.ejectedUntil = performance.now() + durationMs;
    sc.outlier.consecutiveFailures = 0;
    logger.warn(`ejected endpoint ${sc.key} of ${target.raw} for ${durationMs} ms (${reason})`);
    emit({ type: "endpoint-ejected", address: sc.key, reason, durationMs });
    changed();
    schedule(durationMs + 1, () => {
      if (closed || !active.has(sc.key)) return;
      emit({ type: "endpoint-returned", address: sc.key });
      changed();
    });
  }

  function onCallEnd(sc: Subchannel, outcome: CallOutcome) {
    if (outliers !== false && !sc.draining) {
      sc.outlier.intervalCalls++;
      if (outcome.failure) {
        sc.outlier.intervalFailures++;
        if (++sc.outlier.consecutiveFailures >= outliers.consecutiveFailures) eject(sc, "consecutive-failures");
      } else if (outcome.ok) {
        sc.outlier.consecutiveFailures = 0;
      }
    }
    if (sc.draining && sc.load.inFlight === 0 && draining.has(sc)) retire(sc);
  }

  function sweepFailureRates() {
    if (outliers === false || outliers.failureRate === false) return;
    const { minimumCalls, stdevFactor } = outliers.failureRate;
    const rates: Array<[Subchannel, number]> = [];
    for (const sc of active.values()) {
      const { intervalCalls, intervalFailures } = sc.outlier;
      if (intervalCalls >= minimumCalls) rates.push([sc, 1 - intervalFailures / intervalCalls]);
      sc.outlier.intervalCalls = 0;
      sc.outlier.intervalFailures = 0;
      // An endpoint that stayed out of trouble for a whole interval is forgiven one ejection.
      if (!isEjected(sc) && intervalFailures === 0 && sc.outlier.ejections > 0) sc.outlier.ejections--;
    }
    for (const sc of failureRateOutliers(rates, stdevFactor)) eject(sc, "failure-rate");
  }
  if (outliers !== false && outliers.failureRate !== false) {
    const interval = setInterval(sweepFailureRates, outliers.failureRate.intervalMs);
    interval.unref();
    timers.add(interval);
  }

  function retire(sc: Subchannel) {
    draining.delete(sc);
    for (const cleanup of cleanups.get(sc) ?? []) cleanup();
    cleanups.delete(sc);
    void sc.connection.close();
  }

  function drain(sc: Subchannel) {
    active.delete(sc.key);
    sc.draining = true;
    stopWatchingHealth(sc);
    draining.add(sc);
    emit({ type: "endpoint-removed", address: sc.key });
    if (sc.load.inFlight === 0) retire(sc);
  }

  function watchHealth(sc: Subchannel) {
    if (!healthWatcher || stopHealth.has(sc)) return;
    sc.health = "unknown";
    stopHealth.set(
      sc,
      healthWatcher(sc, (status) => {
        const next = status === "unimplemented" ? "disabled" : status;
        if (next === sc.health) return;
        sc.health = next;
        emit({ type: "endpoint-health", address: sc.key, status });
        changed();
      }),
    );
  }
  function stopWatchingHealth(sc: Subchannel) {
    stopHealth.get(sc)?.();
    stopHealth.delete(sc);
  }

  // A new endpoint starts from the mean latency estimate of the endpoints
  // already measured, not from the fixed default: otherwise p2c would keep a
  // freshly scaled-up pod nearly idle until the default decays.
  function seedLatency(): { defaultMs?: number } {
    let sum = 0;
    let n = 0;
    for (const sc of active.values()) {
      if (sc.stats.calls > 0) {
        sum += sc.load.latencyMs();
        n++;
      }
    }
    return n > 0 ? { defaultMs: sum / n } : {};
  }

  function add(endpoint: Endpoint) {
    const connection = options.createConnection(endpoint);
    const sc = createSubchannel(endpoint, connection, { ...options.loadOptions, ...seedLatency() }, onCallEnd);
    let failing = false;
    const unsubscribe = connection.subscribe((event) => {
      if (event.type === "state") {
        emit({
          type: "endpoint-state",
          address: sc.key,
          state: event.state,
          ...(event.error ? { error: event.error } : {}),
        });
        if (event.state === "ready") {
          failing = false;
          if (!sc.draining) watchHealth(sc);
        } else {
          stopWatchingHealth(sc);
        }
        if (event.state === "transient-failure") {
          connectionError = event.error;
          const message = `endpoint ${sc.key} of ${target.raw} failed to connect: ${event.error?.message ?? "unknown error"}`;
          // Once per outage; the retries that follow go to debug.
          if (failing) logger.debug(message);
          else logger.warn(`${message} (retrying with backoff)`);
          failing = true;
          resolver.refresh();
        }
        if (!sc.draining) changed();
      } else {
        // A lost connection or GOAWAY often means the endpoint set is changing.
        if (event.type === "lost" && event.error) connectionError = event.error;
        resolver.refresh();
      }
    });
    cleanups.set(sc, [unsubscribe, () => stopWatchingHealth(sc)]);
    active.set(sc.key, sc);
    emit({ type: "endpoint-added", address: sc.key });
    if (balancer.connect !== "first") connection.connect();
  }

  function update(endpoints: readonly Endpoint[]) {
    if (closed) return;
    resolved = true;
    const wanted = new Map<string, Endpoint>();
    for (const e of endpoints) {
      if (!e.draining) wanted.set(endpointKey(e), e);
    }
    for (const sc of [...active.values()]) {
      if (!wanted.has(sc.key)) drain(sc);
    }
    // Rebuild in the resolver's order (pick-first and round-robin rely on it).
    const previous = new Map(active);
    active.clear();
    for (const [key, endpoint] of wanted) {
      const sc = previous.get(key);
      if (sc) {
        sc.endpoint = endpoint;
        active.set(key, sc);
      } else {
        add(endpoint);
      }
    }
    changed();
  }

  function describeFailure(): string {
    if (!resolved) {
      return resolverError
        ? `"${target.raw}" did not resolve: ${resolverError.message}`
        : `"${target.raw}" has not resolved yet`;
    }
    if (active.size === 0) {
      return `"${target.raw}" resolved to no endpoints${resolverError ? `; last resolver error: ${resolverError.message}` : ""}`;
    }
    const states = new Map<string, number>();
    for (const sc of active.values()) {
      const state = usable(sc) || sc.state() !== "ready" ? sc.state() : `ready but ${sc.health}`;
      states.set(state, (states.get(state) ?? 0) + 1);
    }
    const summary = [...states].map(([s, n]) => `${n} ${s}`).join(", ");
    const last = connectionError ?? resolverError;
    return `no ready endpoint for "${target.raw}" (${summary})${last ? `; last error: ${last.message}` : ""}`;
  }

  resolver.start({
    onEndpoints: update,
    onError(error) {
      resolverError = error;
      logger.warn(`resolving ${target.raw} failed, keeping the last good endpoints: ${error.message}`);
      emit({ type: "resolver-error", error });
    },
  });

  const pool: EndpointPool = {
    tryPick(avoid) {
      const list = readyList();
      if (list.length === 0) return undefined;
      if (avoid === undefined || list.length === 1) {
        return balancer.pick(list) as Subchannel | undefined;
      }
      const others = list.filter((sc) => sc !== avoid);
      return balancer.pick(others.length > 0 ? others : list) as Subchannel | undefined;
    },
    async waitForPick(deadline, signal, avoid) {
      for (;;) {
        if (closed) throw new NoEndpointError(`channel to "${target.raw}" is closed`, "closed");
        const sc = pool.tryPick(avoid);
        if (sc) return sc;
        const left = deadline - performance.now();
        if (left <= 0) throw new NoEndpointError(describeFailure(), "deadline");
        if (signal?.aborted) {
          throw new NoEndpointError(`call canceled while waiting for an endpoint of "${target.raw}"`, "aborted");
        }
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", wake);
            waiters.delete(wake);
            resolve();
          };
          const timer = setTimeout(wake, left);
          signal?.addEventListener("abort", wake);
          waiters.add(wake);
        });
      }
    },
    subchannels: () => [...active.values(), ...draining],
    isEjected: (sc) => isEjected(sc),
    lastError: () => (connectionError ?? resolverError)?.message,
    beginClose() {
      if (closed) return;
      closed = true;
      resolver.close();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      wakeAll();
    },
    async destroy() {
      pool.beginClose();
      const all = [...active.values(), ...draining];
      active.clear();
      draining.clear();
      readyDirty = true;
      for (const list of cleanups.values()) for (const cleanup of list) cleanup();
      cleanups.clear();
      await Promise.all(all.map((sc) => sc.connection.close({ destroy: true })));
    },
  };
  return pool;
}
