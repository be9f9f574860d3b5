import type { ConnectivityState } from "@meshlite/core";
import type { HealthStatus } from "./subchannel.js";

/** One endpoint in a channel snapshot. */
export interface EndpointSnapshot {
  /** `host:port` dialled. */
  address: string;
  state: ConnectivityState;
  /** Left the set (or terminating): takes no new calls, finishing the ones in flight. */
  draining: boolean;
  /** Calls in flight. */
  inFlight: number;
  /** Calls waiting for their first response message. */
  pending: number;
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
  weight: number;
  zone?: string;
}

/** What `channel.snapshot()` returns. */
export interface ChannelSnapshot {
  target: string;
  balancer: string;
  closed: boolean;
  /** The last resolver or connection error. */
  lastError?: string;
  endpoints: EndpointSnapshot[];
}
