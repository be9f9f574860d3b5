import { performance } from "node:perf_hooks";
import { assertKnownKeys, emptyOrcaLoadReport, encodeOrcaLoadReport, type OrcaLoadReport } from "@meshlite/core";
import { cpuLimit, memoryLimitBytes } from "./resource-limits.js";

/** Options of createServerLoad. */
export interface ServerLoadOptions {
  /** How often the measurements are renewed: each one covers the time since the last. Default 1000 ms. */
  sampleIntervalMs?: number;
  /** CPUs the process may use, for `cpu_utilization`. Default: the container's CPU limit (cgroup v2), else the CPUs Node sees. */
  cpuLimit?: number;
  /** Memory the process may use in bytes, for `mem_utilization`. Default: the container's limit (cgroup v2), else the machine's. */
  memoryLimitBytes?: number;
  /**
   * What `application_utilization` reports. Default "event-loop": the event
   * loop's utilization (`performance.eventLoopUtilization()`), which is what
   * limits a Node.js server (one busy core under a 4-CPU limit reads as 25%
   * CPU but 100% event loop). "none" leaves it out, so weighted round robin
   * uses `cpu_utilization`.
   */
  applicationUtilization?: "event-loop" | "none";
  /**
   * More to report, asked at each sample with what was measured: named
   * metrics, utilizations by resource, or any field to override (an
   * application-defined utilization, such as queue length / capacity).
   * Default: none.
   */
  metrics?: (measured: Readonly<OrcaLoadReport>) => Partial<OrcaLoadReport>;
  /** The clock, ms. Default performance.now. */
  now?: () => number;
}

/** The load of this server process, measured as calls end; what ORCA reports carry. */
export interface ServerLoad {
  /** A call ended; `ok` false when it failed (counted in `eps`). */
  callEnded(ok: boolean): void;
  /** The report for the last sample (renewed when `sampleIntervalMs` passed). */
  report(): OrcaLoadReport;
  /** The same report, binary (an `xds.data.orca.v3.OrcaLoadReport`), base64: the `endpoint-load-metrics-bin` value. */
  reportBase64(): string;
  /** The same report in the `endpoint-load-metrics` header's TEXT form. */
  reportText(): string;
}

const optionKeys = ["sampleIntervalMs", "cpuLimit", "memoryLimitBytes", "applicationUtilization", "metrics", "now"];

/**
 * Measures the process's load for ORCA reports: CPU use over its CPU limit,
 * resident memory over its memory limit, event-loop utilization, calls and
 * failed calls per second. Measured lazily: a report renews its figures when
 * `sampleIntervalMs` has passed since the last, so there is no timer and
 * nothing to close; each figure covers the time since the previous sample.
 */
export function createServerLoad(options: ServerLoadOptions = {}): ServerLoad {
  assertKnownKeys(options, optionKeys, "createServerLoad");
  const interval = options.sampleIntervalMs ?? 1000;
  if (!(interval > 0)) {
    throw new RangeError(`createServerLoad: sampleIntervalMs must be a number > 0, got ${String(interval)}`);
  }
  const cpus = options.cpuLimit ?? cpuLimit();
  const memory = options.memoryLimitBytes ?? memoryLimitBytes();
  if (!(cpus > 0) || !(memory > 0)) {
    throw new RangeError(
      `createServerLoad: cpuLimit and memoryLimitBytes must be numbers > 0, got ${String(cpus)} and ${String(memory)}`,
    );
  }
  const mode = options.applicationUtilization ?? "event-loop";
  if (mode !== "event-loop" && mode !== "none") {
    throw new TypeError(
      `createServerLoad: applicationUtilization must be "event-loop" or "none", got ${JSON.stringify(mode)}`,
    );
  }
  const now = options.now ?? (() => performance.now());

  let sampledAt = now();
  let cpuAt = process.cpuUsage();
  let eluAt = performance.eventLoopUtilization();
  let calls = 0;
  let errors = 0;
  let current = emptyOrcaLoadReport();
  let base64: string | undefined;
  let text: string | undefined;
  let renewAt = Number.NEGATIVE_INFINITY;

  /** The figures since the last full sample; a window shorter than the interval (only right after start) is renewed at a tenth of it. */
  function sample(at: number) {
    const elapsed = at - sampledAt;
    const seconds = Math.max(elapsed, interval / 10) / 1000;
    const cpu = process.cpuUsage(cpuAt);
    const report = emptyOrcaLoadReport();
    report.cpuUtilization = (cpu.user + cpu.system) / 1e6 / seconds / cpus;
    report.memUtilization = Math.min(1, process.memoryUsage.rss() / memory);
    if (mode === "event-loop") report.applicationUtilization = performance.eventLoopUtilization(eluAt).utilization;
    report.rpsFractional = calls / seconds;
    report.eps = errors / seconds;
    if (options.metrics) Object.assign(report, options.metrics(report));
    current = report;
    base64 = undefined;
    text = undefined;
    if (elapsed >= interval) {
      sampledAt = at;
      cpuAt = process.cpuUsage();
      eluAt = performance.eventLoopUtilization();
      calls = 0;
      errors = 0;
      renewAt = at + interval;
    } else {
      renewAt = at + interval / 10;
    }
  }

  function fresh(): OrcaLoadReport {
    const at = now();
    if (at >= renewAt) sample(at);
    return current;
  }

  return {
    callEnded(ok) {
      calls++;
      if (!ok) errors++;
    },
    report: fresh,
    reportBase64() {
      const report = fresh();
      base64 ??= Buffer.from(encodeOrcaLoadReport(report)).toString("base64");
      return base64;
    },
    reportText() {
      const report = fresh();
      text ??= `TEXT ${textForm(report)}`;
      return text;
    },
  };
}

/** `key=value, ...` of the report's non-zero fields, map entries as `named_metrics.NAME=value`. */
function textForm(report: OrcaLoadReport): string {
  const parts: string[] = [];
  const add = (key: string, value: number) => {
    if (value !== 0) parts.push(`${key}=${value}`);
  };
  add("cpu_utilization", report.cpuUtilization);
  add("mem_utilization", report.memUtilization);
  add("application_utilization", report.applicationUtilization);
  add("rps_fractional", report.rpsFractional);
  add("eps", report.eps);
  for (const [name, map] of [
    ["request_cost", report.requestCost],
    ["utilization", report.utilization],
    ["named_metrics", report.namedMetrics],
  ] as const) {
    for (const [key, value] of Object.entries(map)) parts.push(`${name}.${key}=${value}`);
  }
  return parts.join(", ");
}
