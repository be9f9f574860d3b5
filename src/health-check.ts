import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createBackoff, type Logger } from "@meshlite/core";
import type { HealthWatcher, Subchannel } from "@meshlite/pool";
import { Health, HealthCheckResponse_ServingStatus } from "./gen/grpc/health/v1/health_pb.js";

/** Active health checking with the standard `grpc.health.v1.Health/Watch` stream. */
export interface HealthCheckOptions {
  /** The service name to watch; "" asks for the server as a whole. */
  service: string;
  /** Delay between failed watch streams: initial and maximum. Default 1000 and 30000 ms. */
  backoff?: { initialMs?: number; maxMs?: number };
}

/**
 * A HealthWatcher that keeps a Watch stream open per ready endpoint. SERVING
 * lets the endpoint take calls, anything else keeps it out; UNIMPLEMENTED
 * turns checking off for that endpoint (one log line); a failed stream is
 * reopened with backoff while the endpoint keeps its last status.
 */
export function createHealthWatcher(
  options: HealthCheckOptions,
  transportOf: (subchannel: Subchannel) => Transport,
  logger: Logger,
): HealthWatcher {
  if (typeof options?.service !== "string") {
    throw new TypeError('createChannel: healthCheck needs a service name, e.g. { service: "" } for the whole server');
  }
  return (subchannel, report) => {
    const abort = new AbortController();
    const backoff = createBackoff({
      initialMs: options.backoff?.initialMs ?? 1000,
      maxMs: options.backoff?.maxMs ?? 30_000,
    });
    const client = createClient(Health, transportOf(subchannel));
    let timer: NodeJS.Timeout | undefined;

    async function watch(): Promise<void> {
      try {
        for await (const response of client.watch({ service: options.service }, { signal: abort.signal })) {
          backoff.reset();
          report(response.status === HealthCheckResponse_ServingStatus.SERVING ? "serving" : "not-serving");
        }
        retry();
      } catch (e) {
        if (abort.signal.aborted) return;
        if (e instanceof ConnectError && e.code === Code.Unimplemented) {
          logger.info(
            `endpoint ${subchannel.key} does not implement grpc.health.v1.Health/Watch: health checking is off for it`,
          );
          report("unimplemented");
          return;
        }
        logger.debug(`health watch of ${subchannel.key} failed: ${String(e)}`);
        retry();
      }
    }
    function retry() {
      if (abort.signal.aborted) return;
      timer = setTimeout(() => void watch(), backoff.next());
      timer.unref();
    }
    void watch();
    return () => {
      abort.abort();
      if (timer) clearTimeout(timer);
    };
  };
}
