import type { ConnectivityState, EventLoopStallStats, OrcaLoadReport } from "@meshlite/core";
import type { LocalitySnapshot } from "./locality-policy.js";
import type { HealthStatus } from "./subchannel.js";
import type { SubsetSnapshot } from "./subset-policy.js";

/** One endpoint in a snapshot. */
export interface EndpointSnapshot {
  /** `host:port` dialled. */
  address: string;
  state: ConnectivityState;
  /** Left the set (or terminating): takes no new calls, finishing the ones in flight. */
  draining: boolean;
  /** Passed every endpoint policy: the balancer may pick it now. */
  candidate: boolean;
  /** Calls in flight. */
  inFlight: number;
  /** Calls waiting for their first response message. */
  pending: number;
  /** HTTP/2 connections open or being dialled to it (more than one when its stream limit was reached). */
  connections: number;
  /** Peak-EWMA latency estimate in ms. */
  latencyMs: number;
  /** Calls sent to this endpoint. */
  calls: number;
  /** Calls that failed (any error, including ones retried elsewhere). */
  failures: number;
  /** Failed calls on this endpoint that were retried (elsewhere when possible). */
  retries: number;
  /** Ejected by outlier detection now. */
  ejected: boolean;
  /** Times ejected (decays while the endpoint behaves). */
  ejections: number;
  /** Health check status; "disabled" when health checking is off or unimplemented. */
  health: HealthStatus;
  /** The endpoint's weight, as the resolver reports it (default 1). */
  weight: number;
  /** The weight the balancer sees, as the endpoint policies set it (slow start ramps it). */
  effectiveWeight: number;
  /** The overload penalty in ms now (part of `latencyMs`); 0 when none or the penalty is off. */
  overloadPenaltyMs: number;
  zone?: string;
  nodeName?: string;
  /** The endpoint's stable hash key (the pod name), where the resolver knows it. */
  hashKey?: string;
  /** The endpoint's last ORCA load report, where it sent one. */
  loadReport?: OrcaLoadReport;
  /** How long ago that report arrived, ms. */
  loadReportAgeMs?: number;
}

/** What `pool.snapshot()` returns. */
export interface PoolSnapshot {
  target: string;
  balancer: string;
  /** The last resolver or connection error. */
  lastError?: string;
  /**
   * Stalls of this process's event loop (ticks 50 ms or more late): their
   * time is taken out of latency samples, keepalive and connect timeouts.
   */
  eventLoop: EventLoopStallStats;
  /** Where the client is and what the locality policy does; absent with `locality: false`. */
  locality?: LocalitySnapshot;
  /** How the subset is chosen (aperture, rendezvous or off), the rank and the members; absent without `subset`. */
  subset?: SubsetSnapshot;
  endpoints: EndpointSnapshot[];
  /** Calls waiting for an endpoint now (none ready, or all at `limits.maxInFlightPerEndpoint`). */
  waiting: number;
  /** Calls refused (or held back, with `whenFull: "wait"`) by each concurrency limit since the pool started. */
  limited: { maxInFlightPerEndpoint: number; maxPending: number };
}
