import {
  type ConnectivityState,
  createPeakEwma,
  type Endpoint,
  type EndpointLoad,
  endpointKey,
  type PeakEwma,
  type PeakEwmaOptions,
  type PickCandidate,
} from "@meshlite/core";
import type { Http2Connection } from "@meshlite/transport";

/**
 * One endpoint of a channel: its connection and the load measured on it. The
 * channel records every call here (`begin`, `firstResponse`, `end`); balancers
 * read `load`.
 */
export interface Subchannel extends PickCandidate {
  readonly connection: Http2Connection;
  /** The endpoint as last reported by the resolver. */
  endpoint: Endpoint;
  /** Taking no new calls; closes once in-flight calls finish. */
  draining: boolean;
  state(): ConnectivityState;
  /** A call starts; returns its start time. */
  begin(): number;
  /** The first response message of a call arrived (streams): it stops counting as pending. */
  firstResponse(startedAt: number): void;
  /**
   * A call ended. `latency` says whether its duration is a fair latency sample
   * (not for calls that never reached the server, nor for streams that
   * already gave one).
   */
  end(startedAt: number, outcome: { ok: boolean; pending: boolean; sample: boolean }): void;
  /** Counters for snapshots. */
  readonly stats: { calls: number; failures: number };
}

export function createSubchannel(
  endpoint: Endpoint,
  connection: Http2Connection,
  loadOptions: PeakEwmaOptions | undefined,
  onIdle: (subchannel: Subchannel) => void,
): Subchannel {
  const ewma: PeakEwma = createPeakEwma(loadOptions);
  let inFlight = 0;
  let pending = 0;
  const load: EndpointLoad = {
    get inFlight() {
      return inFlight;
    },
    get pending() {
      return pending;
    },
    latencyMs: () => ewma.estimate(),
  };
  const subchannel: Subchannel = {
    key: endpointKey(endpoint),
    endpoint,
    connection,
    load,
    draining: false,
    stats: { calls: 0, failures: 0 },
    state: () => connection.state(),
    begin() {
      inFlight++;
      pending++;
      subchannel.stats.calls++;
      return performance.now();
    },
    firstResponse(startedAt) {
      pending--;
      const now = performance.now();
      ewma.observe(now - startedAt, now);
    },
    end(startedAt, outcome) {
      inFlight--;
      if (outcome.pending) pending--;
      if (!outcome.ok) subchannel.stats.failures++;
      if (outcome.sample) {
        const now = performance.now();
        ewma.observe(now - startedAt, now);
      }
      if (inFlight === 0) onIdle(subchannel);
    },
  };
  return subchannel;
}
