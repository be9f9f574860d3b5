import { assertKnownKeys } from "@meshlite/core";
import type { EndpointPolicy, PolicyHooks } from "./endpoint-policy.js";
import type { Subchannel } from "./subchannel.js";

/** Slow start: a new endpoint's weight ramps up over a window instead of taking its full share at once. */
export interface SlowStartOptions {
  /** How long the ramp lasts, in ms, from when the endpoint can take calls. Default 30000. */
  windowMs?: number;
  /**
   * The ramp's shape, Envoy's: the weight is `weight x (t / windowMs)^(1 / aggression)`;
   * 1 rises linearly, above 1 faster at first. A number > 0. Default 1.
   */
  aggression?: number;
  /** The ramp never goes below this share of the endpoint's weight, in percent (0-100). Default 10. */
  minWeightPercent?: number;
}

export type ResolvedSlowStart = Required<SlowStartOptions>;

const slowStartKeys = ["windowMs", "aggression", "minWeightPercent"] as const;

/**
 * Checks the options and fills in the defaults. `where` names the option in
 * messages: "createChannel: slowStart".
 */
export function resolveSlowStart(
  options: SlowStartOptions | false | undefined,
  where: string,
): ResolvedSlowStart | false {
  if (options === false) return false;
  const o = options ?? {};
  if (typeof o !== "object" || o === null || Array.isArray(o)) {
    throw new TypeError(
      `${where} must be an object { windowMs, aggression, minWeightPercent } or false, got ${JSON.stringify(o)}`,
    );
  }
  assertKnownKeys(o, slowStartKeys, where);
  const { windowMs = 30_000, aggression = 1, minWeightPercent = 10 } = o;
  if (!(typeof windowMs === "number" && windowMs > 0 && Number.isFinite(windowMs))) {
    throw new TypeError(`${where}.windowMs must be a number of milliseconds > 0, got ${JSON.stringify(windowMs)}`);
  }
  if (!(typeof aggression === "number" && aggression > 0 && Number.isFinite(aggression))) {
    throw new TypeError(`${where}.aggression must be a number > 0 (1: linear), got ${JSON.stringify(aggression)}`);
  }
  if (!(typeof minWeightPercent === "number" && minWeightPercent >= 0 && minWeightPercent <= 100)) {
    throw new TypeError(
      `${where}.minWeightPercent must be a number from 0 to 100, got ${JSON.stringify(minWeightPercent)}`,
    );
  }
  return { windowMs, aggression, minWeightPercent };
}

/** The ramp factor `t` ms into a window: Envoy's max(min, (t / window)^(1 / aggression)). */
export function slowStartFactor(options: ResolvedSlowStart, elapsedMs: number): number {
  if (elapsedMs >= options.windowMs) return 1;
  const ramp = (Math.max(elapsedMs, 0) / options.windowMs) ** (1 / options.aggression);
  return Math.max(options.minWeightPercent / 100, ramp);
}

/** Where an endpoint is in slow start. */
type Phase =
  /** Takes its full weight. */
  | "warm"
  /** Ramps from its next time as a candidate on. */
  | "cold"
  /** Ramping since `since`. */
  | "ramping";

/** How many steps a window's ramp is recomputed in. */
const steps = 20;

/** Slow start as an endpoint policy, with what snapshots and tests see of it. */
export interface SlowStartPolicy extends EndpointPolicy {
  /** The factor an endpoint's weight is ramped by now (1 when it is not ramping). */
  factorOf(subchannel: Subchannel): number;
}

/**
 * Ramps the effective weight of an endpoint over `windowMs` from when it
 * becomes a candidate: one added to the set after the pool started, and one
 * coming back after it was left out while connected (outlier ejection,
 * NOT_SERVING, or any policy before this one, such as locality, leaving it
 * out), or after its connection failed (the pod restarted); not one whose
 * connection was merely replaced (GOAWAY, idle). The
 * endpoints of the pool's first set take their full weight at once, and
 * when no candidate is warm (every endpoint is new) no weight is changed:
 * there is nothing to ramp against. Runs with the pipeline, not per call: a
 * timer (unref'd, only while something ramps) asks for a run every
 * 1/20 of the window.
 */
export function createSlowStartPolicy(
  options: ResolvedSlowStart,
  hooks: PolicyHooks,
  now: () => number = () => performance.now(),
): SlowStartPolicy {
  const phases = new Map<Subchannel, { phase: Phase; since: number }>();
  // Whether the pool had candidates yet: endpoints known before then are the first set.
  let started = false;
  let timer: NodeJS.Timeout | undefined;

  function stateOf(sc: Subchannel) {
    let state = phases.get(sc);
    if (state === undefined) {
      state = { phase: started ? "cold" : "warm", since: 0 };
      phases.set(sc, state);
    }
    return state;
  }

  function tick() {
    hooks.changed();
  }
  function keepStepping(ramping: boolean) {
    if (ramping && timer === undefined) {
      timer = setInterval(tick, Math.max(options.windowMs / steps, 10));
      timer.unref();
    } else if (!ramping && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  }

  function factorAt(sc: Subchannel, t: number): number {
    const state = phases.get(sc);
    return state?.phase === "ramping" ? slowStartFactor(options, t - state.since) : 1;
  }

  return {
    name: "slow-start",
    select(candidates, context) {
      const t = now();
      // What health, ejection and panic mode left: an endpoint the locality or
      // subset policy leaves out (another zone, while local ones suffice) is
      // a warm pod serving other clients, not a cold one, and takes its full
      // share at once when it is needed (a spill-over must not ramp).
      const inList = new Set(context.inputOf("locality") ?? context.inputOf("subset") ?? candidates);
      for (const sc of hooks.endpoints()) {
        const state = stateOf(sc);
        // Left out while connected and past its first health report: ejected or NOT_SERVING.
        if (!inList.has(sc) && sc.state() === "ready" && sc.health !== "unknown") state.phase = "cold";
      }
      let warm = 0;
      let ramping = false;
      for (const sc of candidates) {
        const state = stateOf(sc);
        if (state.phase === "cold") {
          state.phase = "ramping";
          state.since = t;
        }
        if (state.phase === "ramping" && t - state.since >= options.windowMs) state.phase = "warm";
        if (state.phase === "warm") warm++;
        else ramping = true;
      }
      if (candidates.length > 0) started = true;
      keepStepping(ramping);
      if (warm === 0 || !ramping) return candidates;
      for (const sc of candidates) sc.weight *= factorAt(sc, t);
      return candidates;
    },
    onState(sc, state) {
      // The connection failed: whatever answers next is likely a restarted, cold process.
      if (state === "transient-failure" && !sc.draining) stateOf(sc).phase = "cold";
    },
    onRemoved(sc) {
      phases.delete(sc);
    },
    close() {
      keepStepping(false);
    },
    factorOf: (sc) => factorAt(sc, now()),
  };
}
