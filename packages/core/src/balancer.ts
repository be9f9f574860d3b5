import type { Endpoint } from "./endpoint.js";
import type { OrcaLoadReport } from "./orca-load-report.js";

/** The load an endpoint reports about itself (ORCA), as last received. */
export interface ServerLoad {
  /** The last report. */
  readonly report: OrcaLoadReport;
  /** When it arrived, `performance.now()` ms. */
  readonly receivedAt: number;
}

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
  /**
   * The endpoint's own report of its load (ORCA: the `endpoint-load-metrics-bin`
   * trailer or `endpoint-load-metrics` header of its responses), the last one
   * received; undefined while it has sent none. Optional for load objects of
   * custom pools.
   */
  readonly serverLoad?: ServerLoad;
}

/** One endpoint a balancer may pick: it passed every endpoint policy (draining, health, ejection...). */
export interface PickCandidate {
  /** `host:port` of the endpoint; stable while it stays in the set. */
  readonly key: string;
  /**
   * A stable identity for hashing: the endpoint's `hashKey` (the pod name,
   * where the resolver knows it), else `key`.
   */
  readonly hashKey: string;
  /** The endpoint's attributes as the resolver reports them: zone, nodeName, weight, hashKey, labels. */
  readonly endpoint: Endpoint;
  /**
   * The weight to balance by: the endpoint's weight (default 1) as endpoint
   * policies adjust it (slow start, overload). Positive.
   */
  readonly weight: number;
  readonly load: EndpointLoad;
}

/**
 * The call being balanced. Built without copying anything: reading `method`
 * or a header is what costs, so a balancer that ignores them pays nothing.
 */
export interface PickCall {
  /** `package.Service/Method`. */
  readonly method: string;
  /**
   * A request header by lowercase name, undefined when the call has none
   * (several values are joined with ", ").
   */
  header(name: string): string | undefined;
}

/**
 * Which endpoints of the set the pool keeps connected.
 *
 * - `"all"`: every endpoint gets a connection (what spreading needs).
 * - `"first-reachable"`: endpoints are dialled one at a time in the
 *   resolver's order and only the first that connects is kept, as gRPC's
 *   pick_first does; when it fails, the next one is dialled.
 */
export type ConnectionPolicy = "all" | "first-reachable";

/**
 * A balancing policy: given the endpoints that may take a call, pick one.
 * `pick` is called once per call (and again for a retry, without the
 * endpoint that failed) and must be cheap; it may keep state (a rotation
 * index). A balancer instance serves one channel.
 */
export interface Balancer {
  /** Name shown in snapshots and errors. */
  readonly name: string;
  /** Which endpoints the pool keeps connected. Default "all". */
  readonly connections?: ConnectionPolicy;
  /**
   * Shuffle the resolver's list on each update before connecting in its
   * order (gRPC pick_first's `shuffleAddressList`, gRFC A62): clients that
   * get the same list spread over it. Default false.
   */
  readonly shuffleAddressList?: boolean;
  /**
   * Picks among `candidates`, which is never empty and keeps the resolver's
   * order; `call` says which call it is for (method, request headers).
   * Return undefined to refuse the call (the channel then waits for a change).
   */
  pick(candidates: readonly PickCandidate[], call: PickCall): PickCandidate | undefined;
}
