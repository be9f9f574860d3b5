import type { Resolver } from "@meshlite/core";
import { apertureShares, rendezvousSubset, ringOrder } from "./aperture.js";
import type { EndpointPolicy, PolicyHooks } from "./endpoint-policy.js";
import type { Subchannel } from "./subchannel.js";
import { hostOf, podIpEnv, type ResolvedSubset } from "./subset-options.js";

/**
 * How the subset is chosen now. "waiting": for the first answer of the peers
 * target (at most 1 s, nothing connected meanwhile), so that a client does
 * not connect a rendezvous subset only to replace it a moment later.
 */
export type SubsetMode = "aperture" | "rendezvous" | "waiting" | "off";

/** The subset policy in a snapshot. */
export interface SubsetSnapshot {
  mode: SubsetMode;
  /** Why this mode: where the rank came from, or why there is none. */
  reason: string;
  /** The client's rank among `count` clients (aperture mode). */
  rank?: number;
  count?: number;
  /** The peers target, when given. */
  peers?: string;
  /** The configured size. */
  size: number;
  /** The size in effect: above `size` while widened under load. */
  effectiveSize: number;
  /** Addresses in the subset, each with its share of this client's calls (0-1, adding up to 1). */
  members: { address: string; share: number }[];
  /** Endpoints still connected after leaving the subset, until the new members are up. */
  leaving: string[];
}

/** Which endpoints the pool keeps connected: the subset's part of the connection manager. */
export interface ConnectionFilter {
  /** The set, a connection state or the peers changed; recomputes the subset when the set or peers did. */
  update(active: readonly Subchannel[]): void;
  /** Whether the endpoint is to be kept connected (a member, or one leaving until its successors are up). */
  held(subchannel: Subchannel): boolean;
}

/** The subset policy: an endpoint policy and the connection filter in one. */
export interface SubsetPolicy extends EndpointPolicy, ConnectionFilter {
  snapshot(): SubsetSnapshot;
}

/**
 * The longest an old member stays connected after leaving the subset when a
 * new member never gets through connecting (it then backs off): its calls
 * go to the members that are up.
 */
const handoverMs = 10_000;
/** How long a new client waits for its peers before it falls back to a rendezvous subset. */
const peersWaitMs = 1000;

/**
 * Subsetting as an endpoint policy that also decides the connections: only
 * the subset's members are dialled; the others stay idle. With the client's
 * rank known (`rank`/`count`, or found among `peers` by its own address) it
 * is a deterministic aperture (see apertureShares): each member's weight is
 * its share of the client's calls, so every server of the fleet gets the
 * same share of all calls. Otherwise a seeded rendezvous-hash subset.
 *
 * When the subset changes, the new members connect first: the old ones keep
 * taking calls until every new member is ready (or has failed to connect,
 * or 10 s passed), then they are let go (open streams finish). So a change
 * of the set or of the peers costs no call.
 */
export function createSubsetPolicy(options: ResolvedSubset, hooks: PolicyHooks, peerResolver?: Resolver): SubsetPolicy {
  let members = new Map<Subchannel, number>();
  let leaving = new Set<Subchannel>();
  let joining = new Set<Subchannel>();
  let signature = "";
  let mode: SubsetMode = "off";
  let reason = "not evaluated yet";
  let rank: number | undefined;
  let count: number | undefined;
  let peerHosts: string[] | undefined;
  let peersVersion = 0;
  let reported = "";
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // Widening under load: the size in effect, and checks in a row above or below the band.
  let effectiveSize = options.size;
  let above = 0;
  let below = 0;
  let widenTimer: NodeJS.Timeout | undefined;
  let activeCount = 0;

  let peersStarted = false;
  let peersWaiting = false;
  let peersWaitTimer: NodeJS.Timeout | undefined;
  // Started on the first update, not at creation: a resolver may report at once, and the pool is not built yet.
  function startPeers() {
    if (peersStarted || peerResolver === undefined) return;
    peersStarted = true;
    peersWaiting = true;
    peersWaitTimer = setTimeout(() => {
      peersWaitTimer = undefined;
      if (!peersWaiting || closed) return;
      peersWaiting = false;
      peersVersion++;
      hooks.changed();
    }, peersWaitMs);
    peersWaitTimer.unref();
    peerResolver.start({
      onEndpoints(endpoints) {
        if (closed) return;
        const hosts = [...new Set(endpoints.filter((e) => !e.draining).map((e) => e.host))];
        if (
          peerHosts !== undefined &&
          hosts.length === peerHosts.length &&
          hosts.every((h, i) => h === peerHosts?.[i])
        ) {
          return;
        }
        peerHosts = hosts;
        peersWaiting = false;
        clearTimeout(peersWaitTimer);
        peersWaitTimer = undefined;
        peersVersion++;
        hooks.changed();
      },
      onError(error) {
        hooks.logger.warn(
          `subset peers ${options.peers} of ${hooks.target}: ${error.message} (keeping the last peers)`,
        );
      },
    });
  }

  /** The client's rank and count, or why they are unknown. */
  function position(): { rank: number; count: number; reason: string } | string {
    if (options.rank !== undefined && options.count !== undefined) {
      return { rank: options.rank, count: options.count, reason: "rank and count from options" };
    }
    if (options.peers === undefined) return "no peers or rank given";
    const self = options.selfAddress;
    if (self === undefined) {
      return `the client's own address is unknown: set subset.selfAddress or ${podIpEnv} (downward API status.podIP)`;
    }
    if (peerHosts === undefined) return `waiting for the peers (${options.peers})`;
    // Most likely a wrong Service name: alone, the client would take every server.
    if (peerHosts.length === 0) return `the peers target ${options.peers} resolved to no endpoints`;
    // The client counts itself even before its own Service lists it (not ready yet).
    const hosts = peerHosts.map(hostOf);
    const listed = hosts.includes(self);
    if (!listed) hosts.push(self);
    const order = ringOrder(hosts);
    const at = order.indexOf(hosts.indexOf(self));
    return {
      rank: at,
      count: hosts.length,
      reason: `rank among ${hosts.length} peers of ${options.peers}${listed ? "" : " (itself not listed yet)"}`,
    };
  }

  function compute(active: readonly Subchannel[]): Map<Subchannel, number> {
    const next = new Map<Subchannel, number>();
    const size = Math.min(effectiveSize, active.length);
    if (active.length < options.minEndpoints || active.length <= options.size) {
      mode = "off";
      reason =
        active.length <= options.size
          ? `${active.length} endpoints, no more than the subset size ${options.size}`
          : `${active.length} endpoints, fewer than minEndpoints ${options.minEndpoints}`;
      rank = undefined;
      count = undefined;
      for (const sc of active) next.set(sc, 1 / Math.max(active.length, 1));
      return next;
    }
    const found = position();
    if (typeof found === "string" && peersWaiting && peerHosts === undefined && options.selfAddress !== undefined) {
      mode = "waiting";
      reason = `${found}, for up to ${peersWaitMs} ms`;
      rank = undefined;
      count = undefined;
      return next;
    }
    if (typeof found === "string") {
      mode = "rendezvous";
      reason = `${found}; seeded rendezvous-hash subset`;
      rank = undefined;
      count = undefined;
      const picked = rendezvousSubset(
        active.map((sc) => sc.key),
        options.seed,
        size,
      );
      for (const i of picked) next.set(active[i] as Subchannel, 1 / picked.length);
      return next;
    }
    mode = "aperture";
    reason = found.reason;
    rank = found.rank;
    count = found.count;
    const order = ringOrder(active.map((sc) => sc.key));
    for (const { index, share } of apertureShares(active.length, found.rank, found.count, size)) {
      next.set(active[order[index] as number] as Subchannel, share);
    }
    return next;
  }

  function report() {
    const key = `${mode}\n${reason}\n${rank}/${count}`;
    if (key === reported) return;
    reported = key;
    const where = rank === undefined ? "" : ` (rank ${rank} of ${count})`;
    hooks.logger.info(`subset for ${hooks.target}: ${mode}${where}, ${members.size} endpoints: ${reason}`);
  }

  /** Compares the members' average calls in flight with the load band; widens or narrows by a step. */
  function checkLoad() {
    const widen = options.widen;
    if (widen === false || mode === "off" || members.size === 0) return;
    let inFlight = 0;
    for (const sc of members.keys()) inFlight += sc.load.inFlight;
    const average = inFlight / members.size;
    above = average > widen.highInFlight ? above + 1 : 0;
    below = average < widen.lowInFlight ? below + 1 : 0;
    let next = effectiveSize;
    if (above >= 2 && effectiveSize < widen.maxSize && members.size < activeCount) {
      next = Math.min(effectiveSize + widen.step, widen.maxSize);
    } else if (below >= 5 && effectiveSize > options.size) {
      next = Math.max(effectiveSize - widen.step, options.size);
    }
    if (next === effectiveSize) return;
    hooks.logger.info(
      `subset for ${hooks.target}: ${next > effectiveSize ? "widening" : "narrowing"} from ${effectiveSize} to ${next} (${average.toFixed(1)} calls in flight per member)`,
    );
    effectiveSize = next;
    above = 0;
    below = 0;
    hooks.changed();
  }

  function startWidening() {
    if (options.widen === false || widenTimer !== undefined || closed) return;
    widenTimer = setInterval(checkLoad, options.widen.intervalMs);
    widenTimer.unref();
  }

  /** The old members can go once every new one is ready or has failed to connect. */
  function settle(): boolean {
    if (leaving.size === 0) return false;
    for (const sc of joining) {
      const state = sc.state();
      if (state === "connecting" || (state === "idle" && members.has(sc))) return false;
    }
    finishHandover();
    return true;
  }

  function finishHandover() {
    leaving = new Set();
    joining = new Set();
    clearTimeout(timer);
    timer = undefined;
  }

  const policy: SubsetPolicy = {
    name: "subset",
    update(active) {
      if (closed) return;
      startPeers();
      startWidening();
      activeCount = active.length;
      const key = `${peersVersion}\n${effectiveSize}\n${active.map((sc) => sc.key).join(",")}`;
      if (key === signature) return;
      signature = key;
      const previous = members;
      members = compute(active);
      const present = new Set(active);
      // Old members that are up keep taking calls while the new ones connect.
      for (const sc of leaving) if (members.has(sc) || !present.has(sc)) leaving.delete(sc);
      for (const sc of previous.keys()) {
        if (!members.has(sc) && present.has(sc) && sc.state() === "ready") leaving.add(sc);
      }
      for (const sc of joining) if (!members.has(sc)) joining.delete(sc);
      for (const sc of members.keys()) if (!previous.has(sc) && sc.state() !== "ready") joining.add(sc);
      report();
      if (leaving.size > 0 && timer === undefined) {
        timer = setTimeout(() => {
          timer = undefined;
          if (leaving.size === 0) return;
          finishHandover();
          hooks.changed();
        }, handoverMs);
        timer.unref();
      }
      settle();
    },
    held: (sc) => members.has(sc) || leaving.has(sc),
    select(candidates) {
      if (mode === "off" && leaving.size === 0) return candidates;
      let top = 0;
      for (const share of members.values()) top = Math.max(top, share);
      const out: Subchannel[] = [];
      for (const sc of candidates) {
        const share = members.get(sc);
        if (share !== undefined) {
          // The widest share counts 1: weights only compare.
          sc.weight *= share / top;
          out.push(sc);
        } else if (leaving.has(sc)) {
          out.push(sc);
        }
      }
      return out;
    },
    onState(sc) {
      if (joining.has(sc) && settle()) hooks.changed();
    },
    onRemoved(sc) {
      leaving.delete(sc);
      joining.delete(sc);
      if (settle()) hooks.changed();
    },
    close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      clearInterval(widenTimer);
      widenTimer = undefined;
      clearTimeout(peersWaitTimer);
      peersWaitTimer = undefined;
      peerResolver?.close();
    },
    snapshot: () => ({
      mode,
      reason,
      ...(rank !== undefined ? { rank, count } : {}),
      ...(options.peers ? { peers: options.peers } : {}),
      size: options.size,
      effectiveSize,
      members: [...members].map(([sc, share]) => ({ address: sc.key, share })),
      leaving: [...leaving].map((sc) => sc.key),
    }),
  };
  return policy;
}
