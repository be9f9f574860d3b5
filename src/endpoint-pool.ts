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
import { createSubchannel, type Subchannel } from "./subchannel.js";

/** Options of createEndpointPool. */
export interface EndpointPoolOptions {
  readonly target: Target;
  readonly resolver: Resolver;
  readonly balancer: Balancer;
  /** Makes the connection of a new endpoint (not yet connected). */
  createConnection(endpoint: Endpoint): Http2Connection;
  readonly loadOptions?: PeakEwmaOptions;
  readonly logger: Logger;
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
 * pick-first), drains endpoints that leave, and picks one per call with the
 * balancer. The channel puts Connect calls on top; the proxy raw streams.
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
  /** Calls in flight over all endpoints. */
  inFlight(): number;
  /** The last resolver or connection error, for messages. */
  lastError(): string | undefined;
  isClosed(): boolean;
  /**
   * Starts closing: stops resolving and fails the calls waiting for an
   * endpoint. Calls that picked one, or pick one now, still go out.
   */
  beginClose(): void;
  /** Closes every connection, resetting what is still in flight. */
  destroy(): Promise<void>;
}

export function createEndpointPool(options: EndpointPoolOptions): EndpointPool {
  const { target, resolver, balancer, logger } = options;
  const active = new Map<string, Subchannel>();
  const draining = new Set<Subchannel>();
  const unsubscribes = new Map<Subchannel, () => void>();
  let ready: Subchannel[] = [];
  let readyDirty = true;
  let waiters: Array<() => void> = [];
  let closed = false;
  let resolved = false;
  let resolverError: Error | undefined;
  let connectionError: Error | undefined;

  function changed() {
    readyDirty = true;
    if (balancer.connect === "first") connectFirst();
    if (waiters.length > 0 && readyList().length > 0) {
      const wake = waiters;
      waiters = [];
      for (const w of wake) w();
    }
  }

  function readyList(): Subchannel[] {
    if (readyDirty) {
      ready = [];
      for (const sc of active.values()) {
        if (sc.state() === "ready") ready.push(sc);
      }
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

  function onIdle(sc: Subchannel) {
    if (sc.draining && draining.has(sc)) {
      retire(sc);
    }
  }

  function retire(sc: Subchannel) {
    draining.delete(sc);
    unsubscribes.get(sc)?.();
    unsubscribes.delete(sc);
    void sc.connection.close();
  }

  function drain(sc: Subchannel) {
    active.delete(sc.key);
    sc.draining = true;
    draining.add(sc);
    if (sc.load.inFlight === 0) retire(sc);
  }

  function add(endpoint: Endpoint) {
    const connection = options.createConnection(endpoint);
    const sc = createSubchannel(endpoint, connection, options.loadOptions, onIdle);
    let failing = false;
    const unsubscribe = connection.subscribe((event) => {
      if (event.type === "state") {
        if (event.state === "ready") failing = false;
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
    unsubscribes.set(sc, unsubscribe);
    active.set(sc.key, sc);
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

  function totalInFlight(): number {
    let n = 0;
    for (const sc of active.values()) n += sc.load.inFlight;
    for (const sc of draining) n += sc.load.inFlight;
    return n;
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
    for (const sc of active.values()) states.set(sc.state(), (states.get(sc.state()) ?? 0) + 1);
    const summary = [...states].map(([s, n]) => `${n} ${s}`).join(", ");
    const last = connectionError ?? resolverError;
    return `no ready endpoint for "${target.raw}" (${summary})${last ? `; last error: ${last.message}` : ""}`;
  }

  resolver.start({
    onEndpoints: update,
    onError(error) {
      resolverError = error;
      logger.warn(`resolving ${target.raw} failed, keeping the last good endpoints: ${error.message}`);
    },
  });

  return {
    tryPick(avoid) {
      const list = readyList();
      if (list.length === 0) return undefined;
      if (avoid === undefined || list.length === 1) {
        return balancer.pick(list) as Subchannel | undefined;
      }
      const others = list.filter((sc) => sc !== avoid);
      return (balancer.pick(others.length > 0 ? others : list) as Subchannel | undefined) ?? undefined;
    },
    async waitForPick(deadline, signal, avoid) {
      for (;;) {
        if (closed) throw new NoEndpointError(`channel to "${target.raw}" is closed`, "closed");
        const sc = this.tryPick(avoid);
        if (sc) return sc;
        const left = deadline - performance.now();
        if (left <= 0) throw new NoEndpointError(describeFailure(), "deadline");
        if (signal?.aborted)
          throw new NoEndpointError(`call canceled while waiting for an endpoint of "${target.raw}"`, "aborted");
        await new Promise<void>((resolve) => {
          const wake = () => {
            clearTimeout(timer);
            signal?.removeEventListener("abort", wake);
            resolve();
          };
          const timer = setTimeout(() => {
            waiters = waiters.filter((w) => w !== wake);
            wake();
          }, left);
          signal?.addEventListener("abort", wake);
          waiters.push(wake);
        });
      }
    },
    subchannels: () => [...active.values(), ...draining],
    inFlight: totalInFlight,
    lastError: () => (connectionError ?? resolverError)?.message,
    isClosed: () => closed,
    beginClose() {
      if (closed) return;
      closed = true;
      resolver.close();
      const wake = waiters;
      waiters = [];
      for (const w of wake) w();
    },
    async destroy() {
      this.beginClose();
      const all = [...active.values(), ...draining];
      active.clear();
      draining.clear();
      readyDirty = true;
      for (const unsubscribe of unsubscribes.values()) unsubscribe();
      unsubscribes.clear();
      await Promise.all(all.map((sc) => sc.connection.close({ destroy: true })));
    },
  };
}
