import type { Endpoint } from "./endpoint.js";

/**
 * The load of one endpoint as the channel measures it; balancers read it to
 * decide. Measurement and decision are separate: the channel records calls,
 * a balancer only reads.
 */
export interface EndpointLoad {
  /** Calls sent to the endpoint that have not completed. */
  readonly inFlight: number;
  /**
   * Calls waiting for their first response message: unary calls until they
   * complete, streaming calls until the first message arrives.
   */
  readonly pending: number;
  /** Peak-EWMA latency estimate in milliseconds, decayed to `now` (`performance.now()` by default). */
  latencyMs(now?: number): number;
  /**
   * Calls started per second over the last few seconds (a decaying count; a
   * new endpoint's is measured over its short life, so it starts level with
   * the others), at `now` (`performance.now()` by default).
   */
  callRate(now?: number): number;
}

/** One endpoint a balancer may pick. */
export interface PickCandidate {
  /** `host:port` of the endpoint; stable while it stays in the set. */
  readonly key: string;
  readonly endpoint: Endpoint;
  readonly load: EndpointLoad;
}

/**
 * A balancing policy: given the endpoints that are ready to take a call, pick
 * one. `pick` is called once per call (and again for a retry, without the
 * endpoint that failed) and must be cheap; it may keep state (a rotation
 * index). A balancer instance serves one channel.
 */
export interface Balancer {
  /** Name shown in snapshots and errors. */
  readonly name: string;
  /**
   * Which endpoints the channel keeps connected: `"all"` (default) dials every
   * endpoint in the set; `"first"` dials them in order and keeps only the
   * first one that connects, as gRPC's pick_first does.
   */
  readonly connect?: "all" | "first";
  /**
   * Picks among `ready`, which is never empty and keeps the resolver's order.
   * Return undefined to refuse the call (the channel then waits for a change).
   */
  pick(ready: readonly PickCandidate[]): PickCandidate | undefined;
}
