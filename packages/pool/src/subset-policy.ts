import type { Resolver } from "@meshlite/core";
import { apertureShares, rendezvousSubset, ringOrder, ringPhase } from "./aperture.js";
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
  /**
   * Addresses in the subset, each with its share of this client's calls (0-1,
   * adding up to 1). A substitute names the member that failed to connect
   * whose share it takes (`replaces`).
   */
  members: { address: string; share: number; replaces?: string }[];
  /** Members (and substitutes) that failed to connect and have not been ready since; still dialled with backoff. */
  failing: string[];
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

/** A member's place in the subset: its share, and the failed member it stands in for. */
interface Membership {
  share: number;
  replaces?: Subchannel;
}

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
 *
 * A member that fails to connect is replaced, until it is ready again, by
 * the next endpoint past the subset (on the ring; by score for rendezvous)
 * that is not failing, with the failed member's share: the client keeps
 * `size` working connections, and the failed member's load spreads over the
 * servers just past the apertures that hold it. The failing ones stay
 * dialled (with backoff), so a member that comes back takes its place again.
 * The search for substitutes looks at most `size` endpoints past the subset,
 * so an outage on the client's side dials at most twice the subset.
 */
export function createSubsetPolicy(options: ResolvedSubset, hooks: PolicyHooks, peerResolver?: Resolver): SubsetPolicy {
  let members = new Map<Subchannel, Membership>();
  // Held endpoints that failed to connect and have not been ready since.
  const failing = new Set<Subchannel>();
  // Failing endpoints past the subset, held so that their return is seen.
  let probing = new Set<Subchannel>();
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
  function position(): { rank: number; count: number; phase: number; reason: string } | string {
    if (options.rank !== undefined && options.count !== undefined) {
      return { rank: options.rank, count: options.count, phase: 0, reason: "rank and count from options" };
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
      phase: ringPhase(hosts),
      reason: `rank among ${hosts.length} peers of ${options.peers}${listed ? "" : " (itself not listed yet)"}`,
    };
  }

  function compute(active: readonly Subchannel[]): Map<Subchannel, Membership> {
    const next = new Map<Subchannel, Membership>();
    probing = new Set();
    const size = Math.min(effectiveSize, active.length);
    if (active.length < options.minEndpoints || active.length <= options.size) {
      mode = "off";
      reason =
        active.length <= options.size
          ? `${active.length} endpoints, no more than the subset size ${options.size}`
          : `${active.length} endpoints, fewer than minEndpoints ${options.minEndpoints}`;
      rank = undefined;
      count = undefined;
      for (const sc of active) next.set(sc, { share: 1 / Math.max(active.length, 1) });
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
      const ranked = rendezvousSubset(
        active.map((sc) => sc.key),
        options.seed,
        size + options.size,
      ).map((i) => active[i] as Subchannel);
      const picked = ranked.slice(0, size);
      for (const sc of picked) next.set(sc, { share: 1 / picked.length });
      substitute(next, ranked.slice(size));
      return next;
    }
    mode = "aperture";
    reason = found.reason;
    rank = found.rank;
    count = found.count;
    const order = ringOrder(active.map((sc) => sc.key));
    const shares = apertureShares(active.length, found.rank + found.phase, found.count, size);
    for (const { index, share } of shares) next.set(active[order[index] as number] as Subchannel, { share });
    // The ring past the aperture's last server, where substitutes come from.
    const end = shares[shares.length - 1]?.index ?? 0;
    const beyond: Subchannel[] = [];
    for (let k = 1; k <= options.size && k < active.length; k++) {
      beyond.push(active[order[(end + k) % active.length] as number] as Subchannel);
    }
    substitute(next, beyond);
    return next;
  }

  /** Gives each failing member's share to the first of `spares` that is neither a member nor failing. */
  function substitute(next: Map<Subchannel, Membership>, spares: readonly Subchannel[]) {
    let s = 0;
    for (const [sc, membership] of [...next]) {
      if (!failing.has(sc)) continue;
      while (s < spares.length && (next.has(spares[s] as Subchannel) || failing.has(spares[s] as Subchannel))) {
        if (failing.has(spares[s] as Subchannel)) probing.add(spares[s] as Subchannel);
        s++;
      }
      const spare = spares[s++];
      if (spare === undefined) return;
      next.set(spare, { share: membership.share, replaces: sc });
    }
  }

  /** What the subset is computed from: the peers, the size in effect, the failing endpoints and the set. */
  function signatureOf(active: readonly Subchannel[]): string {
    let failed = "";
    for (const sc of failing) failed += `${sc.key},`;
    return `${peersVersion}\n${effectiveSize}\n${failed}\n${active.map((sc) => sc.key).join(",")}`;
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
      if (signatureOf(active) === signature) return;
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
      // Only held endpoints are dialled, so only their failures are current.
      for (const sc of failing) if (!members.has(sc) && !probing.has(sc)) failing.delete(sc);
      // After that cleanup: the subset just computed already accounts for it.
      signature = signatureOf(active);
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
    held: (sc) => members.has(sc) || leaving.has(sc) || probing.has(sc),
    select(candidates) {
      if (mode === "off" && leaving.size === 0) return candidates;
      let top = 0;
      for (const m of members.values()) top = Math.max(top, m.share);
      const out: Subchannel[] = [];
      for (const sc of candidates) {
        const membership = members.get(sc);
        if (membership !== undefined) {
          // The widest share counts 1: weights only compare.
          sc.weight *= membership.share / top;
          out.push(sc);
        } else if (leaving.has(sc)) {
          out.push(sc);
        }
      }
      return out;
    },
    onState(sc, state) {
      // The pool runs the pipeline after every state change, and update() sees the failing set change.
      if (state === "transient-failure" && mode !== "off" && (members.has(sc) || probing.has(sc))) failing.add(sc);
      else if (state === "ready") failing.delete(sc);
      if (joining.has(sc) && settle()) hooks.changed();
    },
    onRemoved(sc) {
      leaving.delete(sc);
      joining.delete(sc);
      failing.delete(sc);
      probing.delete(sc);
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
      members: [...members].map(([sc, m]) => ({
        address: sc.key,
        share: m.share,
        ...(m.replaces ? { replaces: m.replaces.key } : {}),
      })),
      failing: [...failing].map((sc) => sc.key),
      leaving: [...leaving].map((sc) => sc.key),
    }),
  };
  return policy;
}
