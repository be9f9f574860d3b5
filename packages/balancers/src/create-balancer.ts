import type { Balancer } from "@meshlite/core";
import { createLeastRequestBalancer } from "./least-request.js";
import { createP2cBalancer } from "./p2c.js";
import { createPickFirstBalancer } from "./pick-first.js";
import { createRoundRobinBalancer } from "./round-robin.js";

/** The balancers that can be named in options. */
export type BalancerName = "p2c" | "least-request" | "round-robin" | "pick-first";

export const balancerNames: readonly BalancerName[] = ["p2c", "least-request", "round-robin", "pick-first"];

/**
 * Returns a fresh balancer for a name, or the given Balancer object after
 * checking its shape. Throws a TypeError naming the accepted values.
 */
export function createBalancer(balancer: BalancerName | Balancer | undefined): Balancer {
  if (balancer === undefined) return createP2cBalancer();
  if (typeof balancer === "object" && balancer !== null) {
    if (typeof balancer.pick !== "function") {
      throw new TypeError("balancer: a Balancer object needs a pick(ready) function");
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
  }
  throw new TypeError(
    `unknown balancer ${JSON.stringify(balancer)}: expected one of ${balancerNames.map((n) => `"${n}"`).join(", ")} or a Balancer object`,
  );
}
