import type { ConnectivityState, Logger } from "@meshlite/core";
import type { PoolEventHandler } from "./pool-event.js";
import type { CallOutcome, Subchannel } from "./subchannel.js";

/**
 * The endpoint policies, in the order the pool runs them. Each takes the
 * list the one before it left and narrows it or changes weights:
 *
 * 1. `draining`: endpoints that left the set (or are terminating) take no new calls.
 * 2. `ready`: only endpoints whose connection is ready.
 * 3. `health`: with active health checking, only endpoints that report SERVING.
 * 4. `outlier-ejection`: passive outlier detection leaves out ejected endpoints.
 * 5. `panic`: when ejection left too few, ejections are ignored.
 * 6. `locality`: the client's node or zone only, with guardrails, and the
 *    nearest other zones added while the local ones are slow (spill-over).
 * 7. `subset`, 8. `slow-start`, 9. `overload`: reserved for the policies that
 *    come next (aperture subsetting, weight ramp-up of new endpoints,
 *    server-load penalties), at these places.
 *
 * What is left goes to the balancer as its candidates.
 */
export const endpointPolicyOrder = [
  "draining",
  "ready",
  "health",
  "outlier-ejection",
  "panic",
  "locality",
  "subset",
  "slow-start",
  "overload",
] as const;

/** The name, and so the place, of an endpoint policy. */
export type EndpointPolicyName = (typeof endpointPolicyOrder)[number];

/** What a policy sees of one run of the pipeline. */
export interface PolicyContext {
  /**
   * The list that entered the policy named `name` in this run; undefined when
   * that policy is not in the pipeline or has not run yet.
   */
  inputOf(name: EndpointPolicyName): readonly Subchannel[] | undefined;
}

/**
 * One step between the endpoint set and the pick. `select` runs when
 * something changed (the set, a connection state, an ejection, a health
 * status), never per call; the pool keeps its result until the next change.
 * A stateful policy learns about endpoints and calls through the optional
 * hooks and asks for a new run with `PolicyHooks.changed()`.
 */
export interface EndpointPolicy {
  readonly name: EndpointPolicyName;
  /**
   * The candidates that may take calls, in the order given; may set their
   * `weight`. Return `candidates` itself when it removes none.
   */
  select(candidates: readonly Subchannel[], context: PolicyContext): readonly Subchannel[];
  /** An endpoint's connection changed state. */
  onState?(subchannel: Subchannel, state: ConnectivityState): void;
  /** A call on an endpoint ended (not for draining endpoints). */
  onCallEnd?(subchannel: Subchannel, outcome: CallOutcome): void;
  /** An endpoint left the set: it drains now. */
  onRemoved?(subchannel: Subchannel): void;
  /** The pool closes: release timers and watches. */
  close?(): void;
}

/** What the pool gives the policies it creates. */
export interface PolicyHooks {
  /** The target as given, for log lines. */
  readonly target: string;
  readonly logger: Logger;
  readonly emit: PoolEventHandler;
  /** Asks for the pipeline to run again before the next pick. */
  changed(): void;
  /** Every endpoint of the set (none draining), in the resolver's order. */
  endpoints(): Iterable<Subchannel>;
}

/** Policies composed in the documented order. */
export interface PolicyPipeline {
  readonly policies: readonly EndpointPolicy[];
  /** Runs every policy over `all`, after resetting each endpoint's weight to its own. */
  run(all: readonly Subchannel[]): readonly Subchannel[];
}

/** Sorts `policies` into endpointPolicyOrder; throws on an unknown or repeated name. */
export function createPolicyPipeline(policies: readonly EndpointPolicy[]): PolicyPipeline {
  const seen = new Set<string>();
  for (const p of policies) {
    if (!endpointPolicyOrder.includes(p.name)) {
      throw new TypeError(
        `unknown endpoint policy "${p.name}": expected one of ${endpointPolicyOrder.map((n) => `"${n}"`).join(", ")}`,
      );
    }
    if (seen.has(p.name)) throw new TypeError(`endpoint policy "${p.name}" appears twice`);
    seen.add(p.name);
  }
  const sorted = [...policies].sort(
    (a, b) => endpointPolicyOrder.indexOf(a.name) - endpointPolicyOrder.indexOf(b.name),
  );
  const inputs = new Map<EndpointPolicyName, readonly Subchannel[]>();
  const context: PolicyContext = { inputOf: (name) => inputs.get(name) };
  return {
    policies: sorted,
    run(all) {
      inputs.clear();
      for (const sc of all) sc.weight = sc.endpoint.weight ?? 1;
      let list = all;
      for (const policy of sorted) {
        inputs.set(policy.name, list);
        list = policy.select(list, context);
      }
      return list;
    },
  };
}
