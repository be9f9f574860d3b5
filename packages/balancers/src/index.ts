export type { BalancerName } from "./create-balancer.js";
export { balancerNames, createBalancer } from "./create-balancer.js";
export type { LeastRequestOptions } from "./least-request.js";
export { createLeastRequestBalancer } from "./least-request.js";
export type { P2cOptions } from "./p2c.js";
export { createP2cBalancer } from "./p2c.js";
export { createPickFirstBalancer } from "./pick-first.js";
export type { RoundRobinOptions } from "./round-robin.js";
export { createRoundRobinBalancer } from "./round-robin.js";
