import type { EndpointPolicy } from "./endpoint-policy.js";

/** Only endpoints whose connection is ready take calls (the others are connecting or backing off). */
export function createReadyPolicy(): EndpointPolicy {
  return {
    name: "ready",
    select: (candidates) => candidates.filter((sc) => sc.state() === "ready"),
  };
}
