import {
  type ConnectivityState,
  createCallRate,
  createOverloadPenalty,
  createPeakEwma,
  type Endpoint,
  type EndpointLoad,
  type EventLoopStalls,
  endpointKey,
  type OrcaLoadReport,
  type OverloadPenaltyOptions,
  type PeakEwmaOptions,
  type PickCandidate,
  type ServerLoad,
} from "@meshlite/core";
import type { EndpointConnection } from "@meshlite/transport/connection";

/** Health as reported by the endpoint's health service; "disabled" when not checked. */
export type HealthStatus = "disabled" | "unknown" | "serving" | "not-serving";

/** How a call on an endpoint ended. */
export interface CallOutcome {
  ok: boolean;
  /** The failure is the endpoint's fault (unavailable, internal, connection lost): counts for outlier detection. */
  failure: boolean;
  /** The call was still waiting for its first response message. */
  pending: boolean;
  /** Its duration is a fair latency sample (not for calls that never reached the server). */
  sample: boolean;
  /**
   * The endpoint said it is overloaded (RESOURCE_EXHAUSTED, HTTP 429/503,
   * `grpc-retry-pushback-ms`): with the overload penalty on, the call counts
   * as a latency penalty instead of a sample. Default false.
   */
  overload?: boolean;
  /** The server's `grpc-retry-pushback-ms` (negative: "do not retry"), with `overload`. */
  pushbackMs?: number;
}

/**
 * One endpoint of a pool: its connection, the load measured on it, its
 * health and effective weight. The call path records every call here
 * (`begin`, `firstResponse`, `end`); balancers read `load` and `weight`.
 */
export interface Subchannel<C extends EndpointConnection = EndpointConnection> extends PickCandidate {
  readonly connection: C;
  /** The endpoint's stable hash key (see PickCandidate), following the endpoint. */
  hashKey: string;
  /** The endpoint as last reported by the resolver. */
  endpoint: Endpoint;
  /** Taking no new calls; closes once in-flight calls finish. */
  draining: boolean;
  health: HealthStatus;
  /** The effective weight: the endpoint's, as endpoint policies last set it. */
  weight: number;
  readonly stats: { calls: number; failures: number; retries: number };
  state(): ConnectivityState;
  /** A call starts; returns its start time. */
  begin(): number;
  /** The first response message of a call arrived (streams): it stops counting as pending. */
  firstResponse(startedAt: number): void;
  end(startedAt: number, outcome: CallOutcome): void;
  /** A load report (ORCA) from the endpoint arrived: it becomes `load.serverLoad`. */
  recordLoadReport(report: OrcaLoadReport, now?: number): void;
  /** The overload penalty in ms now, already part of `load.latencyMs()`; 0 when off or decayed. */
  overloadPenaltyMs(now?: number): number;
}

/** Options of createSubchannel beyond its parts. */
export interface SubchannelOptions {
  /** The caller's event-loop stalls: successful calls that span one are no samples. Default: none watched. */
  stalls?: EventLoopStalls;
  /** Latency penalty of answers that say the endpoint is overloaded; false turns it off. Default: on, defaults. */
  overloadPenalty?: OverloadPenaltyOptions | false;
  /** The other endpoints' latency (see createPeakEwma's `peerMs`). Default: none known. */
  peerLatencyMs?: (self: Subchannel) => number | undefined;
}

export function createSubchannel(
  endpoint: Endpoint,
  connection: EndpointConnection,
  loadOptions: PeakEwmaOptions | undefined,
  onEnd: (subchannel: Subchannel, outcome: CallOutcome) => void,
  options: SubchannelOptions = {},
): Subchannel {
  const { stalls, overloadPenalty = {}, peerLatencyMs } = options;
  const spannedStall = (since: number, now: number) => stalls?.spannedStall(since, now) ?? false;
  const stalledMs = (since: number, now: number) => stalls?.stalledMs(since, now) ?? 0;
  const ewma = createPeakEwma(loadOptions, performance.now(), peerLatencyMs && (() => peerLatencyMs(subchannel)));
  const penalty = overloadPenalty === false ? undefined : createOverloadPenalty(overloadPenalty);
  const callRate = createCallRate();
  let inFlight = 0;
  let pending = 0;
  let serverLoad: ServerLoad | undefined;
  // The estimate right after the last sample, undecayed: what the overload
  // penalty scales with (an endpoint avoided for shedding gets few calls, and
  // its decayed estimate would make the penalty small).
  let sampledMs = 0;
  const load: EndpointLoad = {
    get inFlight() {
      return inFlight;
    },
    get pending() {
      return pending;
    },
    latencyMs: (now = performance.now()) => {
      const estimate = ewma.estimate(now);
      return penalty === undefined ? estimate : estimate + penalty.value(now);
    },
    callRate: (now) => callRate.rate(now),
    get serverLoad() {
      return serverLoad;
    },
  };
  const subchannel: Subchannel = {
    key: endpointKey(endpoint),
    hashKey: endpoint.hashKey ?? endpointKey(endpoint),
    endpoint,
    connection,
    load,
    draining: false,
    health: "disabled",
    weight: endpoint.weight ?? 1,
    stats: { calls: 0, failures: 0, retries: 0 },
    state: () => connection.state(),
    begin() {
      inFlight++;
      pending++;
      subchannel.stats.calls++;
      const now = performance.now();
      callRate.record(now);
      return now;
    },
    firstResponse(startedAt) {
      pending--;
      const now = performance.now();
      if (!spannedStall(startedAt, now)) {
        ewma.observe(now - startedAt, now);
        sampledMs = ewma.estimate(now);
      }
    },
    end(startedAt, outcome) {
      inFlight--;
      if (outcome.pending) pending--;
      if (!outcome.ok) subchannel.stats.failures++;
      if (outcome.overload && penalty !== undefined) {
        // A shed call's quick answer is not the service's latency: it is a penalty.
        const now = performance.now();
        const pushback = outcome.pushbackMs !== undefined && outcome.pushbackMs > 0 ? outcome.pushbackMs : undefined;
        penalty.record(Math.max(sampledMs, ewma.estimate(now)), now, pushback);
        if (outcome.failure) ewma.observeFailure(now - startedAt, now);
      } else if (outcome.sample) {
        const now = performance.now();
        if (outcome.ok) penalty?.relieve(now);
        // A failure the endpoint is to blame for is often fast (a broken pod
        // answers UNAVAILABLE at once); as a plain sample it would make the
        // endpoint look cheap and draw more calls. It counts as a slow call,
        // with a bounded penalty (see PeakEwma); a stall of the caller's own
        // loop during it is not part of its duration.
        if (outcome.failure) ewma.observeFailure(now - startedAt - stalledMs(startedAt, now), now);
        // A success that spanned such a stall measured the caller, not the
        // endpoint: it is no sample (subtracting the stall would make the
        // endpoint look faster than it is).
        else if (!spannedStall(startedAt, now)) {
          ewma.observe(now - startedAt, now);
          sampledMs = ewma.estimate(now);
        }
      }
      onEnd(subchannel, outcome);
    },
    recordLoadReport(report, now = performance.now()) {
      serverLoad = { report, receivedAt: now };
    },
    overloadPenaltyMs: (now = performance.now()) => penalty?.value(now) ?? 0,
  };
  return subchannel;
}
