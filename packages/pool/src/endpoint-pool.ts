import {
  acquireEventLoopStalls,
  type Balancer,
  type Endpoint,
  endpointKey,
  type Logger,
  type OverloadPenaltyOptions,
  type PeakEwmaOptions,
  type PickCall,
  type Resolver,
  type Target,
} from "@meshlite/core";
import type { EndpointConnection } from "@meshlite/transport/connection";
import { defaultCallLimits, type ResolvedCallLimits } from "./call-limits.js";
import { createConnectionManager } from "./connection-manager.js";
import { createDrainingPolicy } from "./draining-policy.js";
import { createPolicyPipeline, type EndpointPolicy, type PolicyHooks } from "./endpoint-policy.js";
import { createHealthPolicy, type HealthWatcher } from "./health-policy.js";
import type { ResolvedLocality } from "./locality-options.js";
import { createLocalityPolicy, type LocalityPolicy } from "./locality-policy.js";
import { NoEndpointError } from "./no-endpoint-error.js";
import { createOutlierDetector, type OutlierDetector, type ResolvedOutlierDetection } from "./outlier-detection.js";
import { createPanicPolicy } from "./panic-mode.js";
import { createPeerLatency } from "./peer-latency.js";
import type { PoolEventHandler } from "./pool-event.js";
import { createReadyPolicy } from "./ready-policy.js";
import { createSlowStartPolicy, type ResolvedSlowStart } from "./slow-start.js";
import type { EndpointSnapshot, PoolSnapshot } from "./snapshot.js";
import { type CallOutcome, createSubchannel, type Subchannel } from "./subchannel.js";
import type { ResolvedSubset } from "./subset-options.js";
import { createSubsetPolicy, type SubsetPolicy } from "./subset-policy.js";

/** Options of createEndpointPool: the parts, already built (createPool builds them from a target). */
export interface EndpointPoolOptions<C extends EndpointConnection = EndpointConnection> {
  /** The target, parsed: named in messages and snapshots. Required. */
  readonly target: Target;
  /** Where the endpoint set comes from; started at once, closed with the pool. Required. */
  readonly resolver: Resolver;
  /** Picks a candidate per call; its `connections` says which endpoints are kept connected. Required. */
  readonly balancer: Balancer;
  /** Makes the connection of a new endpoint (not yet connected). Required; tests pass fakes. */
  createConnection(endpoint: Endpoint): C;
  /** Latency measurement (peak-EWMA). Default: decay 1000 ms; a new endpoint starts from the measured ones' mean (1 ms when none is). */
  readonly loadOptions?: PeakEwmaOptions;
  /** Passive outlier detection (with panic mode); false turns it off. */
  readonly outlierDetection: ResolvedOutlierDetection | false;
  /** Active health checking; undefined turns it off. */
  readonly healthWatcher?: HealthWatcher;
  /** Zone- and node-aware routing (resolveLocality); undefined or false turns it off. */
  readonly locality?: ResolvedLocality | false;
  /**
   * Subsetting (resolveSubset): only a subset of the endpoints is connected
   * and picked; undefined or false turns it off.
   */
  readonly subset?: ResolvedSubset | false;
  /** Resolves the client's own peers for `subset.peers` (createPool makes it from the target). Default: none. */
  readonly subsetPeers?: Resolver;
  /** Weight ramp-up of new endpoints (resolveSlowStart fills it in). Default: off (createPool turns it on). */
  readonly slowStart?: ResolvedSlowStart | false;
  /** Latency penalty of endpoints that shed load; false turns it off. Default: on, factor 10, decay 5000 ms. */
  readonly overloadPenalty?: OverloadPenaltyOptions | false;
  /** Concurrency limits (resolveCallLimits fills them in). Default: none per endpoint, 10000 waiting calls. */
  readonly limits?: ResolvedCallLimits;
  /** How long a call without a deadline waits for a ready endpoint. Default 20000 ms. */
  readonly waitForReadyMs?: number;
  /** Where warnings go (endpoints failing, resolver errors). Required (createPool defaults it to the console). */
  readonly logger: Logger;
  /** Receives endpoint, ejection, health and resolver events. Default: none. */
  readonly onEvent?: PoolEventHandler;
  /** Receives the service configs the resolver finds (ResolverListener.onServiceConfig). Default: none. */
  readonly onServiceConfig?: (text: string | undefined) => void;
}

/**
 * The balancing core, free of any message layer: follows the resolver's
 * endpoint set, keeps a connection per endpoint (as the balancer's connection
 * policy says), runs the endpoint policies (draining, ready, health, outlier
 * ejection, panic mode) whenever something changes, and picks one of the
 * candidates they leave per call with the balancer. The channel puts Connect
 * calls on top; the proxy raw streams.
 */
export interface EndpointPool<C extends EndpointConnection = EndpointConnection> {
  /**
   * Picks a candidate now, preferring one other than `avoid`; undefined when
   * there is none. `call` is passed to the balancer (default: no method, no headers).
   * Allocation-free when endpoints are ready and nothing is avoided.
   */
  tryPick(avoid?: Subchannel, call?: PickCall): Subchannel<C> | undefined;
  /**
   * Waits for a candidate until `deadline` (ms, performance.now() clock; when
   * undefined, `waitForReadyMs` from now) or the signal aborts; with
   * `failFast`, only while the target is resolving or an endpoint is
   * connecting (or idle): every endpoint failing ends the wait at once (gRPC's
   * fail-fast). Throws NoEndpointError with the status to fail the call with
   * and a message that names the target and the last error.
   */
  waitForPick(
    deadline: number | undefined,
    signal: AbortSignal | undefined,
    avoid?: Subchannel,
    call?: PickCall,
    failFast?: boolean,
  ): Promise<Subchannel<C>>;
  /**
   * Replaces the balancer (a new service config): the next pick uses it, and
   * its connection policy applies from now (endpoints it wants connected are
   * dialled; connections it does not need stay open until they close).
   */
  setBalancer(balancer: Balancer): void;
  /** Active endpoints in the resolver's order, then draining ones. */
  subchannels(): Subchannel<C>[];
  /** The endpoints that may take calls now, as the endpoint policies left them. */
  candidates(): readonly Subchannel<C>[];
  /** Endpoints, their state, load, ejection and health. */
  snapshot(): PoolSnapshot;
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

/** The call a pick is for when the caller says nothing about it. */
const anyCall: PickCall = { method: "", header: () => undefined };

export function createEndpointPool<C extends EndpointConnection = EndpointConnection>(
  options: EndpointPoolOptions<C>,
): EndpointPool<C> {
  const { target, resolver, logger } = options;
  let balancer = options.balancer;
  const emit = options.onEvent ?? (() => {});
  const waitForReadyMs = options.waitForReadyMs ?? 20_000;
  const limits = options.limits ?? defaultCallLimits;
  const maxPerEndpoint = limits.maxInFlightPerEndpoint;
  // Calls waiting in waitForPick, and what the limits refused (see snapshot()).
  let waiting = 0;
  const limited = { maxInFlightPerEndpoint: 0, maxPending: 0 };
  const limitReports = {
    maxInFlightPerEndpoint: { at: Number.NEGATIVE_INFINITY, calls: 0 },
    maxPending: { at: Number.NEGATIVE_INFINITY, calls: 0 },
  };
  const active = new Map<string, Subchannel>();
  const draining = new Set<Subchannel>();
  const cleanups = new Map<Subchannel, () => void>();
  /** Calls waiting with failFast: they must hear of every change, not only of a new candidate. */
  let failFastWaiting = 0;
  let candidateList: readonly Subchannel[] = [];
  let dirty = true;
  const waiters = new Set<() => void>();
  let closed = false;
  let resolved = false;
  let resolverError: Error | undefined;
  let connectionError: Error | undefined;
  // The caller's own event-loop stalls, taken out of latency samples and failure verdicts.
  const stalls = acquireEventLoopStalls();
  const peers = createPeerLatency(() => active.values());

  const hooks: PolicyHooks = {
    target: target.raw,
    logger,
    emit,
    changed,
    endpoints: () => active.values(),
  };
  const outliers: OutlierDetector | undefined =
    options.outlierDetection === false ? undefined : createOutlierDetector(options.outlierDetection, hooks);
  const policies: EndpointPolicy[] = [createDrainingPolicy(), createReadyPolicy()];
  if (options.healthWatcher) policies.push(createHealthPolicy(options.healthWatcher, hooks));
  if (outliers && options.outlierDetection !== false) {
    policies.push(outliers, createPanicPolicy(options.outlierDetection.panicThresholdPercent));
  }
  const locality: LocalityPolicy | undefined = options.locality
    ? createLocalityPolicy(options.locality, hooks, resolver.zoneOfNode?.bind(resolver))
    : undefined;
  if (locality) policies.push(locality);
  const subset: SubsetPolicy | undefined = options.subset
    ? createSubsetPolicy(options.subset, hooks, options.subsetPeers)
    : undefined;
  if (subset) policies.push(subset);
  // Replaced by setBalancer (a new connection policy), always with the subset's filter.
  let connections = createConnectionManager(balancer.connections, subset);
  if (options.slowStart) policies.push(createSlowStartPolicy(options.slowStart, hooks));
  const pipeline = createPolicyPipeline(policies);

  function changed() {
    dirty = true;
    connections.changed(active.values());
    if (waiters.size > 0 && (failFastWaiting > 0 || candidates().length > 0)) wakeAll();
  }

  function wakeAll() {
    for (const wake of [...waiters]) wake();
  }

  function wakeFirst() {
    for (const wake of waiters) {
      wake();
      return;
    }
  }

  /** Counts a call a limit refused or held back; reports it at most once a second per limit. */
  function limitTripped(limit: "maxInFlightPerEndpoint" | "maxPending") {
    limited[limit]++;
    const report = limitReports[limit];
    report.calls++;
    const now = performance.now();
    if (now - report.at < 1000) return;
    emit({ type: "limit-reached", limit, max: limits[limit], calls: report.calls });
    report.at = now;
    report.calls = 0;
  }

  /**
   * The balancer's pick was at maxInFlightPerEndpoint: pick again among the
   * candidates with room (a new list: this path is for a pool near its limit).
   */
  function pickWithRoom(list: readonly Subchannel[], avoid: Subchannel | undefined, call: PickCall) {
    const room = list.filter((sc) => sc.load.inFlight < maxPerEndpoint);
    if (room.length === 0) return undefined;
    const others = avoid === undefined || room.length === 1 ? room : room.filter((sc) => sc !== avoid);
    return balancer.pick(others.length > 0 ? others : room, call) as Subchannel | undefined;
  }

  function allFull(): boolean {
    const list = candidates();
    return list.length > 0 && list.every((sc) => sc.load.inFlight >= maxPerEndpoint);
  }

  function candidates(): readonly Subchannel[] {
    if (dirty) {
      candidateList = pipeline.run(pool.subchannels());
      dirty = false;
    }
    return candidateList;
  }

  function onCallEnd(sc: Subchannel, outcome: CallOutcome) {
    // Room on an endpoint: the call that waited longest tries again. One per
    // call that ends, not only at the limit's edge: calls that end in the same
    // tick (one socket read) free a slot each before any waiter runs.
    if (waiters.size > 0 && maxPerEndpoint !== Number.POSITIVE_INFINITY && sc.load.inFlight < maxPerEndpoint) {
      wakeFirst();
    }
    if (!sc.draining) {
      for (const policy of pipeline.policies) policy.onCallEnd?.(sc, outcome);
    } else if (sc.load.inFlight === 0 && draining.has(sc)) {
      retire(sc);
    }
  }

  function retire(sc: Subchannel) {
    draining.delete(sc);
    cleanups.get(sc)?.();
    cleanups.delete(sc);
    void sc.connection.close();
  }

  function drain(sc: Subchannel) {
    active.delete(sc.key);
    sc.draining = true;
    for (const policy of pipeline.policies) policy.onRemoved?.(sc);
    draining.add(sc);
    emit({ type: "endpoint-removed", address: sc.key });
    if (sc.load.inFlight === 0) retire(sc);
  }

  // A new endpoint starts from the mean latency estimate of the endpoints
  // already measured, not from the fixed default: otherwise p2c would keep a
  // freshly scaled-up pod nearly idle until the default decays.
  function seedLatency(): { defaultMs?: number } {
    const mean = peers.mean();
    return mean === undefined ? {} : { defaultMs: mean };
  }

  function add(endpoint: Endpoint) {
    const connection = options.createConnection(endpoint);
    const sc = createSubchannel(endpoint, connection, { ...options.loadOptions, ...seedLatency() }, onCallEnd, {
      stalls,
      overloadPenalty: options.overloadPenalty ?? {},
      peerLatencyMs: peers.excluding,
    });
    let failing = false;
    const unsubscribe = connection.subscribe((event) => {
      if (event.type === "state") {
        emit({
          type: "endpoint-state",
          address: sc.key,
          state: event.state,
          ...(event.error ? { error: event.error } : {}),
        });
        if (event.state === "ready") failing = false;
        for (const policy of pipeline.policies) policy.onState?.(sc, event.state);
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
    cleanups.set(sc, unsubscribe);
    active.set(sc.key, sc);
    emit({ type: "endpoint-added", address: sc.key });
    connections.added(sc);
  }

  function update(endpoints: readonly Endpoint[]) {
    if (closed) return;
    resolved = true;
    const wanted = new Map<string, Endpoint>();
    for (const e of balancer.shuffleAddressList ? shuffled(endpoints) : endpoints) {
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
        sc.hashKey = endpoint.hashKey ?? key;
        active.set(key, sc);
      } else {
        add(endpoint);
      }
    }
    changed();
  }

  /**
   * Nothing to wait for: resolution failed or gave no endpoints, or no
   * endpoint is a candidate, connecting or idle (to be dialled): every one
   * failed to connect, or is ready but kept out (ejected, not serving).
   */
  function allFailing(): boolean {
    if (!resolved) return resolverError !== undefined;
    if (candidates().length > 0) return false;
    for (const sc of active.values()) {
      const state = sc.state();
      if (state === "connecting" || state === "idle") return false;
    }
    return true;
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
      const healthy = sc.health === "serving" || sc.health === "disabled";
      const state = healthy || sc.state() !== "ready" ? sc.state() : `ready but ${sc.health}`;
      states.set(state, (states.get(state) ?? 0) + 1);
    }
    const summary = [...states].map(([s, n]) => `${n} ${s}`).join(", ");
    if (maxPerEndpoint !== Number.POSITIVE_INFINITY && allFull()) {
      return `every ready endpoint of "${target.raw}" (${summary}) has ${maxPerEndpoint} calls in flight, the limit (limits.maxInFlightPerEndpoint)`;
    }
    const last = connectionError ?? resolverError;
    return `no ready endpoint for "${target.raw}" (${summary})${last ? `; last error: ${last.message}` : ""}`;
  }

  function snapshotOf(sc: Subchannel, picked: ReadonlySet<Subchannel>): EndpointSnapshot {
    const { endpoint } = sc;
    const serverLoad = sc.load.serverLoad;
    return {
      address: sc.key,
      state: sc.state(),
      draining: sc.draining,
      candidate: picked.has(sc),
      inFlight: sc.load.inFlight,
      pending: sc.load.pending,
      connections: sc.connection.connectionCount(),
      latencyMs: sc.load.latencyMs(),
      calls: sc.stats.calls,
      failures: sc.stats.failures,
      retries: sc.stats.retries,
      ejected: outliers?.isEjected(sc) ?? false,
      ejections: outliers?.ejections(sc) ?? 0,
      health: sc.health,
      weight: endpoint.weight ?? 1,
      effectiveWeight: sc.weight,
      overloadPenaltyMs: sc.overloadPenaltyMs(),
      ...(endpoint.zone ? { zone: endpoint.zone } : {}),
      ...(endpoint.nodeName ? { nodeName: endpoint.nodeName } : {}),
      ...(endpoint.hashKey ? { hashKey: endpoint.hashKey } : {}),
      ...(serverLoad
        ? { loadReport: serverLoad.report, loadReportAgeMs: performance.now() - serverLoad.receivedAt }
        : {}),
    };
  }

  /** The waiting part of waitForPick: until a candidate (with room) is there, the deadline passes or the signal aborts. */
  async function waitInLine(
    deadline: number | undefined,
    signal: AbortSignal | undefined,
    avoid: Subchannel | undefined,
    call: PickCall | undefined,
    failFast: boolean,
  ): Promise<Subchannel> {
    const until = deadline ?? performance.now() + waitForReadyMs;
    let heldBack = false;
    for (;;) {
      if (closed) throw new NoEndpointError(`channel to "${target.raw}" is closed`, "closed");
      const sc = pool.tryPick(avoid, call);
      if (sc) return sc;
      const full = maxPerEndpoint !== Number.POSITIVE_INFINITY && allFull();
      if (full && !heldBack) {
        heldBack = true;
        limitTripped("maxInFlightPerEndpoint");
      }
      if (full && limits.whenFull === "fail") {
        throw new NoEndpointError(
          `every ready endpoint of "${target.raw}" has ${maxPerEndpoint} calls in flight, the limit (limits.maxInFlightPerEndpoint)`,
          "max-in-flight",
        );
      }
      if (failFast && allFailing()) throw new NoEndpointError(describeFailure(), "fail-fast");
      const left = until - performance.now();
      if (left <= 0) throw new NoEndpointError(describeFailure(), deadline === undefined ? "wait-limit" : "deadline");
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
  }

  // Inside, subchannels are typed by what the pool itself uses of their
  // connection; the caller gets back the connections it made.
  const pool: EndpointPool<EndpointConnection> = {
    tryPick(avoid, call = anyCall) {
      const list = candidates();
      if (list.length === 0) return undefined;
      let sc = balancer.pick(list, call) as Subchannel | undefined;
      // A retry avoids the endpoint that just failed. The balancer picks from the whole list
      // first, so its own state (a rotation's position) moves on as for any call; picking from
      // a shorter list with the same position would skip one endpoint every time (round-robin
      // over A, B, C with A failing sent every retry to C and none to B).
      if (sc === avoid && avoid !== undefined && list.length > 1) {
        const others = list.filter((c) => c !== avoid);
        sc = balancer.pick(others, call) as Subchannel | undefined;
      }
      if (sc !== undefined && sc.load.inFlight >= maxPerEndpoint) sc = pickWithRoom(list, avoid, call);
      return sc;
    },
    async waitForPick(deadline, signal, avoid, call, failFast = false) {
      if (closed) throw new NoEndpointError(`channel to "${target.raw}" is closed`, "closed");
      const first = pool.tryPick(avoid, call);
      if (first) return first;
      if (waiting >= limits.maxPending) {
        limitTripped("maxPending");
        throw new NoEndpointError(
          `${waiting} calls to "${target.raw}" are waiting for an endpoint already, the limit (limits.maxPending ${limits.maxPending}); ${describeFailure()}`,
          "max-pending",
        );
      }
      waiting++;
      if (failFast) failFastWaiting++;
      try {
        return await waitInLine(deadline, signal, avoid, call, failFast);
      } finally {
        waiting--;
        if (failFast) failFastWaiting--;
      }
    },
    setBalancer(next) {
      if (next === balancer) return;
      balancer = next;
      connections = createConnectionManager(next.connections, subset);
      // Without a subset, the "all" policy dials what "first-reachable" left idle; with one, the
      // subset's manager dials its members on the change below.
      if (subset === undefined && (next.connections ?? "all") === "all") {
        for (const sc of active.values()) if (sc.state() === "idle") sc.connection.connect();
      }
      changed();
    },
    subchannels: () => [...active.values(), ...draining],
    candidates,
    snapshot() {
      const picked = new Set(candidates());
      const lastError = pool.lastError();
      return {
        target: target.raw,
        balancer: balancer.name,
        ...(lastError ? { lastError } : {}),
        eventLoop: stalls.stats(),
        ...(locality ? { locality: locality.snapshot() } : {}),
        ...(subset ? { subset: subset.snapshot() } : {}),
        endpoints: pool.subchannels().map((sc) => snapshotOf(sc, picked)),
        waiting,
        limited: { ...limited },
      };
    },
    lastError: () => (connectionError ?? resolverError)?.message,
    beginClose() {
      if (closed) return;
      closed = true;
      stalls.release();
      resolver.close();
      for (const policy of pipeline.policies) policy.close?.();
      wakeAll();
    },
    async destroy() {
      pool.beginClose();
      const all = [...active.values(), ...draining];
      active.clear();
      draining.clear();
      dirty = true;
      for (const cleanup of cleanups.values()) cleanup();
      cleanups.clear();
      await Promise.all(all.map((sc) => sc.connection.close({ destroy: true })));
    },
  };

  const onServiceConfig = options.onServiceConfig;
  resolver.start({
    ...(onServiceConfig
      ? {
          onServiceConfig(text: string | undefined) {
            if (!closed) onServiceConfig(text);
          },
        }
      : {}),
    onEndpoints: update,
    onError(error) {
      resolverError = error;
      logger.warn(`resolving ${target.raw} failed, keeping the last good endpoints: ${error.message}`);
      emit({ type: "resolver-error", error });
    },
  });
  return pool as unknown as EndpointPool<C>;
}

/** A copy of the list in random order (Fisher-Yates). */
function shuffled<T>(list: readonly T[]): T[] {
  const copy = [...list];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy;
}
