import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createBackoff, type Logger, type OrcaLoadReport } from "@meshlite/core";
import type { Subchannel } from "@meshlite/pool";
import type { ChannelEvent } from "./channel-event.js";
import type { OrcaLoadReport as GeneratedReport } from "./gen/xds/data/orca/v3/orca_load_report_pb.js";
import { OpenRcaService } from "./gen/xds/service/orca/v3/orca_pb.js";

/** Out-of-band ORCA load reports: a `xds.service.orca.v3.OpenRcaService/StreamCoreMetrics` stream per ready endpoint. */
export interface OutOfBandLoadReportOptions {
  /** The report interval asked of the servers. Default 10000 ms (gRFC A58's oob_reporting_period), at least 100. */
  intervalMs?: number;
}

/** Keeps a StreamCoreMetrics stream open to every ready endpoint; each report becomes the endpoint's serverLoad. */
export interface LoadReportStreams {
  /** Follows the pool's events: opens a stream when an endpoint is ready, closes it otherwise. */
  onEvent(event: ChannelEvent): void;
  close(): void;
}

export function createLoadReportStreams(
  options: OutOfBandLoadReportOptions,
  find: (address: string) => Subchannel | undefined,
  transportOf: (subchannel: Subchannel) => Transport,
  logger: Logger,
): LoadReportStreams {
  const intervalMs = options.intervalMs ?? 10_000;
  if (typeof intervalMs !== "number" || !(intervalMs >= 100) || !Number.isFinite(intervalMs)) {
    throw new RangeError(
      `createChannel: outOfBandLoadReports.intervalMs must be a number >= 100, got ${String(intervalMs)}`,
    );
  }
  const reportInterval = { seconds: BigInt(Math.floor(intervalMs / 1000)), nanos: (intervalMs % 1000) * 1e6 };
  const stops = new Map<string, () => void>();
  /** Endpoints that answered UNIMPLEMENTED: not asked again while their connection lives. */
  const unimplemented = new Set<string>();

  function open(sc: Subchannel) {
    if (stops.has(sc.key) || unimplemented.has(sc.key)) return;
    const abort = new AbortController();
    const backoff = createBackoff({ initialMs: 1000, maxMs: 30_000 });
    const client = createClient(OpenRcaService, transportOf(sc));
    let timer: NodeJS.Timeout | undefined;
    async function stream(): Promise<void> {
      try {
        for await (const report of client.streamCoreMetrics({ reportInterval }, { signal: abort.signal })) {
          backoff.reset();
          sc.recordLoadReport(fromGenerated(report));
        }
        retry();
      } catch (e) {
        if (abort.signal.aborted) return;
        if (e instanceof ConnectError && e.code === Code.Unimplemented) {
          logger.info(
            `endpoint ${sc.key} does not implement OpenRcaService/StreamCoreMetrics: no out-of-band load reports from it`,
          );
          unimplemented.add(sc.key);
          stops.delete(sc.key);
          return;
        }
        logger.debug(`load report stream of ${sc.key} failed: ${String(e)}`);
        retry();
      }
    }
    function retry() {
      if (abort.signal.aborted) return;
      timer = setTimeout(() => void stream(), backoff.next());
      timer.unref();
    }
    stops.set(sc.key, () => {
      abort.abort();
      if (timer) clearTimeout(timer);
    });
    void stream();
  }

  function stop(address: string) {
    stops.get(address)?.();
    stops.delete(address);
  }

  return {
    onEvent(event) {
      if (event.type === "endpoint-state") {
        if (event.state === "ready") {
          const sc = find(event.address);
          if (sc && !sc.draining) open(sc);
        } else {
          stop(event.address);
          // A new connection may be to a new server process: ask it again.
          if (event.state !== "connecting") unimplemented.delete(event.address);
        }
      } else if (event.type === "endpoint-removed") {
        stop(event.address);
        unimplemented.delete(event.address);
      }
    },
    close() {
      for (const address of [...stops.keys()]) stop(address);
    },
  };
}

function fromGenerated(r: GeneratedReport): OrcaLoadReport {
  return {
    cpuUtilization: r.cpuUtilization,
    memUtilization: r.memUtilization,
    applicationUtilization: r.applicationUtilization,
    rpsFractional: r.rpsFractional,
    eps: r.eps,
    rps: Number(r.rps),
    requestCost: r.requestCost,
    utilization: r.utilization,
    namedMetrics: r.namedMetrics,
  };
}
