import type { OrcaLoadReport } from "@meshlite/core";

/** The part of grpc-js's per-call metric recorder (`call.getMetricsRecorder()`) a report is written to. */
export interface GrpcJsCallMetricsRecorder {
  recordCPUUtilizationMetric(value: number): void;
  recordMemoryUtilizationMetric(value: number): void;
  recordApplicationUtilizationMetric(value: number): void;
  recordQpsMetric(value: number): void;
  recordEpsMetric(value: number): void;
  recordUtilizationMetric(name: string, value: number): void;
  recordNamedMetric(name: string, value: number): void;
  recordRequestCostMetric(name: string, value: number): void;
}

/**
 * Writes a report to a grpc-js call's metric recorder, which sends it in the
 * `endpoint-load-metrics-bin` trailer (the server needs the option
 * `"grpc.server_call_metric_recording": 1`):
 *
 *     const load = createServerLoad();
 *     // in each handler, before answering:
 *     recordOnGrpcJsCall(load.report(), call.getMetricsRecorder());
 *     // and when it ends:
 *     load.callEnded(ok);
 */
export function recordOnGrpcJsCall(report: OrcaLoadReport, recorder: GrpcJsCallMetricsRecorder): void {
  if (report.cpuUtilization > 0) recorder.recordCPUUtilizationMetric(report.cpuUtilization);
  if (report.memUtilization > 0) recorder.recordMemoryUtilizationMetric(report.memUtilization);
  if (report.applicationUtilization > 0) recorder.recordApplicationUtilizationMetric(report.applicationUtilization);
  if (report.rpsFractional > 0) recorder.recordQpsMetric(report.rpsFractional);
  if (report.eps > 0) recorder.recordEpsMetric(report.eps);
  for (const [name, value] of Object.entries(report.utilization)) recorder.recordUtilizationMetric(name, value);
  for (const [name, value] of Object.entries(report.namedMetrics)) recorder.recordNamedMetric(name, value);
  for (const [name, value] of Object.entries(report.requestCost)) recorder.recordRequestCostMetric(name, value);
}
