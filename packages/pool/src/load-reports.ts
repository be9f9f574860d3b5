import { type Logger, parseOrcaHeader, parseOrcaTrailer } from "@meshlite/core";
import type { Subchannel } from "./subchannel.js";

/** Endpoints whose malformed report was already warned about. */
const warned = new WeakSet<Subchannel>();

/**
 * Records the ORCA load report a response carries on its endpoint: the
 * `endpoint-load-metrics-bin` trailer (binary), else the
 * `endpoint-load-metrics` header (Envoy's TEXT / JSON / BIN forms; Connect
 * unary responses have no trailers). Nothing to do for a response without
 * either. A malformed report is ignored, with one warning per endpoint.
 */
export function recordLoadReport(
  sc: Subchannel,
  trailerValue: string | string[] | null | undefined,
  headerValue: string | string[] | null | undefined,
  logger: Logger,
): void {
  if (trailerValue == null && headerValue == null) return;
  try {
    const report =
      trailerValue != null ? parseOrcaTrailer(lastOf(trailerValue)) : parseOrcaHeader(lastOf(headerValue as string));
    sc.recordLoadReport(report);
  } catch (e) {
    if (warned.has(sc)) return;
    warned.add(sc);
    logger.warn(`ignoring the load reports of endpoint ${sc.key} that do not parse: ${(e as Error).message}`);
  }
}

function lastOf(value: string | string[]): string {
  return typeof value === "string" ? value : (value[value.length - 1] ?? "");
}
