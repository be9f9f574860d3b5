import type { Balancer } from "@meshlite/core";
import { createLeastRequestBalancer } from "./least-request.js";
import { createMaglevBalancer } from "./maglev.js";
import { createP2cBalancer } from "./p2c.js";
import { createPickFirstBalancer } from "./pick-first.js";
import { createRingHashBalancer } from "./ring-hash.js";
import { createRoundRobinBalancer } from "./round-robin.js";
import { createWeightedRoundRobinBalancer } from "./weighted-round-robin.js";

/** The balancers that can be named in options. */
export type BalancerName =
  | "p2c"
  | "least-request"
  | "round-robin"
  | "weighted-round-robin"
  | "pick-first"
  | "ring-hash"
  | "maglev";

export const balancerNames: readonly BalancerName[] = [
  "p2c",
  "least-request",
  "round-robin",
  "weighted-round-robin",
  "pick-first",
  "ring-hash",
  "maglev",
];

const connectionPolicies = ["all", "first-reachable"];

/**
 * Returns a fresh balancer for a name, or the given Balancer object after
 * checking its shape. Throws a TypeError naming the accepted values; `api`
 * (the function the user called) starts the message.
 */
export function createBalancer(balancer: BalancerName | Balancer | undefined, api = "createBalancer"): Balancer {
  if (balancer === undefined) return createP2cBalancer();
  if (typeof balancer === "object" && balancer !== null) {
    if (typeof balancer.pick !== "function") {
      throw new TypeError(`${api}: a Balancer object needs a pick(candidates, call) function`);
    }
    if ("connect" in balancer) {
      throw new TypeError(
        `${api}: Balancer.connect is gone; write connections: "first-reachable" instead of connect: "first" (or drop it for "all")`,
      );
    }
    if (balancer.connections !== undefined && !connectionPolicies.includes(balancer.connections)) {
      throw new TypeError(
        `${api}: unknown Balancer.connections ${JSON.stringify(balancer.connections)}: expected "all" or "first-reachable"`,
      );
    }
    return balancer;
  }
  switch (balancer) {
    case "p2c":
      return createP2cBalancer();
    case "least-request":
      return createLeastRequestBalancer();
    case "round-robin":
      return createRoundRobinBalancer();
    case "pick-first":
      return createPickFirstBalancer();
    case "weighted-round-robin":
      return createWeightedRoundRobinBalancer();
    case "ring-hash":
      return createRingHashBalancer();
    case "maglev":
      return createMaglevBalancer();
  }
  throw new TypeError(
    `${api}: unknown balancer ${JSON.stringify(balancer)}: expected one of ${balancerNames.map((n) => `"${n}"`).join(", ")} or a Balancer object`,
  );
}
