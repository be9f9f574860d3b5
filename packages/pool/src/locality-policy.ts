import { type ClientLocality, clientLocalityOf, nodeNameEnv, zoneEnv } from "./client-locality.js";
import type { EndpointPolicy, PolicyHooks } from "./endpoint-policy.js";
import type { LocalityBand, LocalityPreference, ResolvedLocality } from "./locality-options.js";
import type { Subchannel } from "./subchannel.js";

/** What the locality policy does now: hands over local endpoints only, local and more, or all. */
/** The weight factor of the slow local endpoint kept in as a probe while spilling. */
const probeWeight = 0.1;

export type LocalityState = "preferring" | "spilling" | "off";

/** The locality policy in a snapshot. */
export interface LocalitySnapshot {
  /** The client's zone; undefined when unknown. */
  zone?: string;
  /** The client's node; undefined when unknown. */
  node?: string;
  /** Where the zone came from: "options", "env MESHLITE_ZONE" or "node label". */
  zoneSource?: string;
  /** What is preferred: the option, or "hints" when following the endpoints' topology hints. */
  prefer: LocalityPreference | "hints";
  state: LocalityState;
  /** Why: the local tier preferred, what made it spill, or why locality is off. */
  reason: string;
  /** The zones of the endpoints handed to the balancer, local first; empty when off. */
  zones: string[];
}

/** The locality policy, with what snapshots show of it. */
export interface LocalityPolicy extends EndpointPolicy {
  snapshot(): LocalitySnapshot;
}

/** What the policy keeps per endpoint: its latency right after its last sample, not decayed by idleness. */
interface Measured {
  held: number;
  samples: number;
  /** When the last sample was taken (performance.now()). */
  at: number;
}

/** A local tier: the endpoints that count as local, and how many must take calls for it to be used. */
interface Tier {
  readonly kind: "node" | "zone";
  readonly name: string;
  readonly member: (sc: Subchannel) => boolean;
  readonly min: number;
}

/** An endpoint counts in load comparisons once it has this many latency samples. */
const minSamples = 5;
/** A ring not measured for this long is no reference for spilling: it may have changed since. */
const referenceMaxAgeMs = 10_000;
/** Checks in a row above the spill band before spilling, and within the return band before coming back. */
const spillChecks = 2;
const returnChecks = 4;
/** The hold time doubles up to this when spills follow each other within `respillWindowMs`. */
const maxHoldMs = 60_000;
const respillWindowMs = 60_000;
/**
 * After spilling further out or coming back, load is not compared for this
 * long: the call rates that weight the latencies (a 2 s window) still show
 * where calls went before.
 */
const settleMs = 2000;

/**
 * Zone- and node-aware routing as an endpoint policy. On every change of the
 * set it splits the candidates into rings: the local tier (same node, or same
 * zone, or what the endpoints' hints assign to the client's zone/node), then
 * each other zone, nearest first. Normally it hands the balancer the local
 * ring only ("preferring"). Guardrails hand over everything ("off"): too few
 * local endpoints (`minEndpoints`), or too few of them able to take calls
 * (`panicThresholdPercent`), or an unknown client locality.
 *
 * Spill-over by load: every `intervalMs` it compares the latency calls see in
 * the rings handed over (peak-EWMA estimates weighted by call rate) with the
 * next ring's last measured latency (or, when that ring was never measured,
 * the lowest the handed-over rings showed). Above `spillAt` twice in a row,
 * it adds the next ring ("spilling") and the balancer spreads calls over
 * both by its own measure; once the inner rings' latency is back within
 * `returnAt` of the outer ring's for four checks, and at least `holdMs`
 * after the spill, it drops that ring again. Nothing runs per call besides
 * recording the latency after a sample.
 */
export function createLocalityPolicy(
  options: ResolvedLocality,
  hooks: PolicyHooks,
  zoneOfNode?: (nodeName: string) => Promise<string | undefined>,
): LocalityPolicy {
  const client: ClientLocality = clientLocalityOf(options);
  const measured = new Map<Subchannel, Measured>();
  let lookingUp = false;
  let closed = false;
  // The rings of the last run: rings[0] is the local tier; handing over
  // level k means rings[0..k].
  let rings: Subchannel[][] = [];
  let ringZones: string[] = [];
  let spill = 0;
  // While spilling: the local endpoints left out for being slow (one slow one stays in as a probe).
  let benched = new Set<Subchannel>();
  let probe: Subchannel | undefined;
  let spillReference = 0;
  let spilledAt = Number.NEGATIVE_INFINITY;
  let spillReason = "";
  let hold = options.holdMs;
  let returnedAt = Number.NEGATIVE_INFINITY;
  let over = 0;
  let under = 0;
  // Per level: the lowest latency the handed-over rings showed while at that
  // level. Kept when spilling out and coming back, so a zone that slows down
  // right after traffic returned to it is still measured against its old self.
  let baselines: number[] = [];
  // The other zones, nearest first, as ranked when the policy last spilled.
  let zoneOrder: readonly string[] = [];
  let state: LocalityState = "off";
  let reason = "not evaluated yet";
  let zones: string[] = [];
  let reported = "";
  let timer: NodeJS.Timeout | undefined;

  if (!client.zone && client.node && zoneOfNode && options.prefer !== "none") {
    lookingUp = true;
    zoneOfNode(client.node).then(
      (zone) => {
        lookingUp = false;
        if (zone) {
          client.zone = zone;
          client.zoneSource = "node label";
        }
        if (!closed) hooks.changed();
      },
      () => {
        lookingUp = false;
        if (!closed) hooks.changed();
      },
    );
  }

  const zoneOf = (sc: Subchannel) => sc.endpoint.zone ?? "";

  function unknownLocality(): string {
    if (lookingUp) return `looking up the zone of node "${client.node}"`;
    return (
      `the client's zone is unknown: set locality.zone, or ${zoneEnv} from the downward API, ` +
      `or ${nodeNameEnv} (spec.nodeName) with RBAC "get nodes" for k8s targets`
    );
  }

  /** The local tiers to try, innermost first, or why there is no preference. */
  function tiers(all: readonly Subchannel[]): Tier[] | string {
    if (options.prefer === "none") return 'locality.prefer is "none"';
    const { zone, node } = client;
    const tiers: Tier[] = [];
    if (options.prefer === undefined) {
      const active = all.filter((sc) => !sc.draining);
      // As kube-proxy: hints count only when every endpoint has them.
      const zoneHints = active.length > 0 && active.every((sc) => (sc.endpoint.hints?.forZones?.length ?? 0) > 0);
      const nodeHints = active.length > 0 && active.every((sc) => (sc.endpoint.hints?.forNodes?.length ?? 0) > 0);
      if (!zoneHints && !nodeHints) return "no locality.prefer given and the endpoints carry no topology hints";
      if (nodeHints && node) {
        tiers.push({
          kind: "node",
          name: `hints for node "${node}"`,
          member: (sc) => has(sc.endpoint.hints?.forNodes, node),
          min: 1,
        });
      }
      if (zoneHints && zone) {
        tiers.push({
          kind: "zone",
          name: `hints for zone "${zone}"`,
          member: (sc) => has(sc.endpoint.hints?.forZones, zone),
          min: options.minEndpoints,
        });
      }
    } else {
      if (options.prefer === "node" && node) {
        tiers.push({ kind: "node", name: `node "${node}"`, member: (sc) => sc.endpoint.nodeName === node, min: 1 });
      }
      if (zone)
        tiers.push({
          kind: "zone",
          name: `zone "${zone}"`,
          member: (sc) => zoneOf(sc) === zone,
          min: options.minEndpoints,
        });
    }
    return tiers.length > 0 ? tiers : unknownLocality();
  }

  function goOff(why: string, candidates: readonly Subchannel[]): readonly Subchannel[] {
    state = "off";
    reason = why;
    zones = [];
    rings = [];
    spill = 0;
    baselines = [];
    benched = new Set();
    over = 0;
    under = 0;
    stopTimer();
    report();
    return candidates;
  }

  /** Splits the candidates into rings around `local`; returns the ones of the current level. */
  function preferTier(tier: Tier, local: readonly Subchannel[], candidates: readonly Subchannel[]) {
    const inRing = new Map<Subchannel, number>();
    for (const sc of local) inRing.set(sc, 0);
    const next: Subchannel[][] = [[...local]];
    const names: string[] = [joinZones(local)];
    // From the node: the rest of the client's zone first.
    const zoneRest =
      client.zone && tier.kind === "node"
        ? candidates.filter((sc) => !inRing.has(sc) && zoneOf(sc) === client.zone)
        : [];
    if (zoneRest.length > 0) {
      for (const sc of zoneRest) inRing.set(sc, next.length);
      next.push(zoneRest);
      names.push(client.zone as string);
    }
    const byZone = new Map<string, Subchannel[]>();
    for (const sc of candidates) {
      if (inRing.has(sc)) continue;
      const z = zoneOf(sc);
      const group = byZone.get(z);
      if (group === undefined) byZone.set(z, [sc]);
      else group.push(sc);
    }
    const rank = (z: string) => {
      const i = zoneOrder.indexOf(z);
      return i === -1 ? zoneOrder.length : i;
    };
    // Nearest first as last ranked; then by name; endpoints without a zone last.
    const others = [...byZone.keys()].sort((a, b) =>
      a === "" ? 1 : b === "" ? -1 : rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0),
    );
    for (const z of others) {
      const group = byZone.get(z) as Subchannel[];
      for (const sc of group) inRing.set(sc, next.length);
      next.push(group);
      names.push(z || "(no zone)");
    }
    rings = next;
    ringZones = names;
    spill = Math.min(spill, rings.length - 1);
    state = spill > 0 ? "spilling" : "preferring";
    reason = spill > 0 ? spillReason : `preferring ${tier.name}`;
    zones = ringZones.slice(0, spill + 1);
    if (rings.length > 1) startTimer();
    else stopTimer();
    report();
    // The probe takes a tenth of a member's share: enough calls to see it
    // recover, few enough that a noisy machine (where p2c may read the slow
    // probe and a busy healthy endpoint as equal) keeps the tail low.
    if (spill > 0 && probe !== undefined && inRing.has(probe)) probe.weight *= probeWeight;
    if (spill === rings.length - 1 && benched.size === 0) return candidates;
    return candidates.filter((sc) => (inRing.get(sc) ?? 0) <= spill && !benched.has(sc));
  }

  function report() {
    const key = `${state}\n${reason}\n${zones.join(",")}`;
    if (key === reported) return;
    reported = key;
    const message = `locality for ${hooks.target}: ${state} (${reason})${zones.length > 0 ? `; zones ${zones.join(", ")}` : ""}`;
    // A lookup in progress is not worth a line of its own: its outcome is.
    if (lookingUp) hooks.logger.debug(message);
    else hooks.logger.info(message);
    hooks.emit({ type: "locality", state, reason, zones: [...zones] });
  }

  /** The latency of rings[from..to]: held estimates of measured endpoints, weighted by call rate or plain. */
  function latencyOf(
    from: number,
    to: number,
    weighted: boolean,
    now: number,
    maxAgeMs = Number.POSITIVE_INFINITY,
  ): number | undefined {
    let sum = 0;
    let weight = 0;
    for (let r = from; r <= to; r++) {
      for (const sc of rings[r] ?? []) {
        const m = measured.get(sc);
        if (m === undefined || m.samples < minSamples || now - m.at > maxAgeMs) continue;
        const w = weighted ? sc.load.callRate(now) + 1e-3 : 1;
        sum += w * m.held;
        weight += w;
      }
    }
    return weight > 0 ? sum / weight : undefined;
  }

  function nearestLatency(now: number): number | undefined {
    let best: number | undefined;
    for (let r = 1; r < rings.length; r++) {
      const l = latencyOf(r, r, false, now, referenceMaxAgeMs);
      if (l !== undefined && (best === undefined || l < best)) best = l;
    }
    return best;
  }

  const above = (x: number, ref: number, band: Required<LocalityBand>) => x > ref * band.ratio && x > ref + band.ms;

  function check() {
    if (state === "off" || rings.length < 2) return;
    const now = performance.now();
    if (spill > 0) benchSlow(latencyOf(spill, spill, false, now) ?? spillReference);
    if (now - Math.max(spilledAt, returnedAt) < settleMs) return;
    const current = latencyOf(0, spill, true, now);
    if (current !== undefined) baselines[spill] = Math.min(baselines[spill] ?? Number.POSITIVE_INFINITY, current);
    const baseline = baselines[spill] ?? Number.POSITIVE_INFINITY;
    if (spill < rings.length - 1 && current !== undefined) {
      // The next ring: from the local tier, the nearest other zone (the lowest measured latency).
      const reference =
        (spill === 0 ? nearestLatency(now) : latencyOf(spill + 1, spill + 1, false, now, referenceMaxAgeMs)) ??
        baseline;
      over = above(current, reference, options.spillAt) ? over + 1 : 0;
      if (over >= spillChecks) {
        spillOut(current, reference, now);
        return;
      }
    }
    if (spill > 0 && now - spilledAt >= hold) {
      const inside = latencyOf(0, spill - 1, false, now);
      const outside = latencyOf(spill, spill, true, now);
      under =
        inside !== undefined && outside !== undefined && !above(inside, outside, options.returnAt) ? under + 1 : 0;
      if (under >= returnChecks) {
        spill--;
        returnedAt = now;
        if (spill === 0) benched = new Set();
        resetChecks();
        hooks.changed();
      }
    }
  }

  function spillOut(current: number, reference: number, now: number) {
    if (spill === 0) {
      // Rank the other zones by their last measured latency; unmeasured ones keep their place.
      const measuredZones = ringZones.slice(1).map((z, i) => [z, latencyOf(i + 1, i + 1, false, now)] as const);
      zoneOrder = measuredZones
        .map(([z, l], i) => [z, l ?? Number.POSITIVE_INFINITY, i] as const)
        .sort((a, b) => a[1] - b[1] || a[2] - b[2])
        .map(([z]) => z);
    }
    hold = now - returnedAt < respillWindowMs ? Math.min(hold * 2, maxHoldMs) : options.holdMs;
    spill++;
    baselines[spill] = Number.POSITIVE_INFINITY;
    spilledAt = now;
    spillReference = reference;
    benchSlow(reference);
    spillReason = `local latency ${ms(current)} ms, above ${options.spillAt.ratio}x and +${options.spillAt.ms} ms of ${ms(reference)} ms`;
    resetChecks();
    hooks.changed();
  }

  /**
   * While spilling, the inner endpoints slower than the zone spilled to (by
   * the return band) are left out but one, which stays in as a probe: a
   * balancer that picks two at random (p2c) would otherwise be left with two
   * slow ones for a sixth of the calls. Each one is back in once the probe
   * before it measures fine; coming back needs them all fine.
   */
  function benchSlow(outside: number) {
    const slow: Subchannel[] = [];
    for (let r = 0; r < spill; r++) {
      for (const sc of rings[r] ?? []) {
        const m = measured.get(sc);
        if (m !== undefined && m.samples >= minSamples && above(m.held, outside, options.returnAt)) slow.push(sc);
      }
    }
    if (probe === undefined || !slow.includes(probe)) probe = slow[0];
    const next = new Set(slow.filter((sc) => sc !== probe));
    if (next.size === benched.size && [...next].every((sc) => benched.has(sc))) return;
    benched = next;
    hooks.changed();
  }

  function resetChecks() {
    over = 0;
    under = 0;
  }

  function startTimer() {
    if (timer !== undefined || closed) return;
    timer = setInterval(check, options.intervalMs);
    timer.unref();
  }
  function stopTimer() {
    clearInterval(timer);
    timer = undefined;
  }

  return {
    name: "locality",
    select(candidates, context) {
      // Nothing can take calls (yet): nothing to prefer, and no state worth reporting.
      if (candidates.length === 0) return candidates;
      const all = context.inputOf("draining") ?? candidates;
      const found = tiers(all);
      if (typeof found === "string") return goOff(found, candidates);
      let why = "";
      for (const tier of found) {
        const members = all.filter(tier.member);
        const local = candidates.filter(tier.member);
        if (local.length < tier.min) {
          why = `${local.length} endpoint${local.length === 1 ? "" : "s"} in ${tier.name} can take calls, fewer than ${tier.min}`;
        } else if (local.length * 100 < members.length * options.panicThresholdPercent) {
          why = `only ${local.length} of the ${members.length} endpoints in ${tier.name} can take calls (below ${options.panicThresholdPercent}%)`;
        } else {
          return preferTier(tier, local, candidates);
        }
      }
      return goOff(why, candidates);
    },
    onCallEnd(sc, outcome) {
      if (!outcome.sample) return;
      let m = measured.get(sc);
      if (m === undefined) {
        m = { held: 0, samples: 0, at: 0 };
        measured.set(sc, m);
      }
      m.at = performance.now();
      m.held = sc.load.latencyMs(m.at);
      m.samples++;
    },
    onRemoved(sc) {
      measured.delete(sc);
      benched.delete(sc);
    },
    close() {
      closed = true;
      stopTimer();
    },
    snapshot: () => ({
      ...(client.zone ? { zone: client.zone } : {}),
      ...(client.node ? { node: client.node } : {}),
      ...(client.zoneSource ? { zoneSource: client.zoneSource } : {}),
      prefer: options.prefer ?? "hints",
      state,
      reason,
      zones: [...zones],
    }),
  };
}

function has(list: readonly string[] | undefined, value: string): boolean {
  return list?.includes(value) ?? false;
}

function joinZones(list: readonly Subchannel[]): string {
  return [...new Set(list.map((sc) => sc.endpoint.zone ?? "(no zone)"))].join("+");
}

function ms(value: number): string {
  return value.toFixed(1);
}
