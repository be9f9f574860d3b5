import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  decodeOrcaLoadReport,
  encodeOrcaLoadReport,
  type OrcaLoadReport,
  parseOrcaHeader,
  parseOrcaTrailer,
} from "@meshlite/core";
import { describe, expect, it } from "vitest";
import { OrcaLoadReportSchema } from "../src/gen/xds/data/orca/v3/orca_load_report_pb.js";

const full = {
  cpuUtilization: 0.42,
  memUtilization: 0.5,
  applicationUtilization: 0.73,
  rpsFractional: 123.5,
  eps: 1.25,
  requestCost: { db: 3, cache: 0.5 },
  utilization: { gpu: 0.9 },
  namedMetrics: { queue: 7, "with space": -1 },
};

/** The fields a report has, without its deprecated rps, as plain objects. */
const plain = (r: OrcaLoadReport) => ({
  cpuUtilization: r.cpuUtilization,
  memUtilization: r.memUtilization,
  applicationUtilization: r.applicationUtilization,
  rpsFractional: r.rpsFractional,
  eps: r.eps,
  requestCost: { ...r.requestCost },
  utilization: { ...r.utilization },
  namedMetrics: { ...r.namedMetrics },
});

describe("OrcaLoadReport binary form", () => {
  it("decodes what the generated xds.data.orca.v3.OrcaLoadReport encodes, and the other way round", () => {
    const generated = toBinary(OrcaLoadReportSchema, create(OrcaLoadReportSchema, { ...full, rps: 9n }));
    const decoded = decodeOrcaLoadReport(generated);
    expect(plain(decoded)).toEqual(full);
    expect(decoded.rps).toBe(9);
    const back = fromBinary(OrcaLoadReportSchema, encodeOrcaLoadReport(full));
    expect(back).toMatchObject(full);
    // Empty fields are left out, as proto3 does.
    expect(encodeOrcaLoadReport({})).toEqual(new Uint8Array());
    expect(plain(decodeOrcaLoadReport(new Uint8Array()))).toMatchObject({ cpuUtilization: 0, namedMetrics: {} });
  });

  it("skips fields it does not know, and says what is wrong with bytes that are not a report", () => {
    // Field 15 (varint), then cpu_utilization: a newer report still reads.
    const withUnknown = Uint8Array.from([15 << 3, 5, ...encodeOrcaLoadReport({ cpuUtilization: 0.5 })]);
    expect(decodeOrcaLoadReport(withUnknown).cpuUtilization).toBe(0.5);
    const truncated = encodeOrcaLoadReport({ cpuUtilization: 0.5 }).subarray(0, 5);
    expect(() => decodeOrcaLoadReport(truncated)).toThrow("not an OrcaLoadReport (truncated at byte 1 of 5)");
    // cpu_utilization as a varint instead of a double.
    expect(() => decodeOrcaLoadReport(Uint8Array.from([1 << 3, 1]))).toThrow(
      "not an OrcaLoadReport (field cpuUtilization (1) has wire type 0",
    );
  });

  it("reads the endpoint-load-metrics-bin trailer's base64, padded or not", () => {
    const base64 = Buffer.from(encodeOrcaLoadReport(full)).toString("base64");
    expect(plain(parseOrcaTrailer(base64))).toEqual(full);
    expect(plain(parseOrcaTrailer(base64.replace(/=+$/, "")))).toEqual(full);
  });
});

describe("endpoint-load-metrics header forms", () => {
  it("reads TEXT with key=value and with Envoy's key:value", () => {
    const text =
      "TEXT cpu_utilization=0.42, mem_utilization=0.5, application_utilization=0.73, rps_fractional=123.5, eps=1.25, request_cost.db=3, request_cost.cache=0.5, utilization.gpu=0.9, named_metrics.queue=7, named_metrics.with space=-1";
    expect(plain(parseOrcaHeader(text))).toEqual(full);
    expect(plain(parseOrcaHeader(text.replaceAll("=", ":")))).toEqual(full);
  });

  it("reads JSON with proto3 JSON names, snake_case or lowerCamelCase", () => {
    expect(plain(parseOrcaHeader(`JSON ${JSON.stringify(full)}`))).toEqual(full);
    const snake = {
      cpu_utilization: 0.42,
      mem_utilization: 0.5,
      application_utilization: 0.73,
      rps_fractional: "123.5",
      eps: 1.25,
      request_cost: { db: 3, cache: 0.5 },
      utilization: { gpu: 0.9 },
      named_metrics: { queue: 7, "with space": -1 },
    };
    expect(plain(parseOrcaHeader(`JSON ${JSON.stringify(snake)}`))).toEqual(full);
  });

  it("reads BIN", () => {
    expect(plain(parseOrcaHeader(`BIN ${Buffer.from(encodeOrcaLoadReport(full)).toString("base64")}`))).toEqual(full);
  });

  it("rejects what it cannot read with what it accepts", () => {
    expect(() => parseOrcaHeader("YAML cpu: 1")).toThrow(
      'endpoint-load-metrics: unknown form "YAML": expected "TEXT k=v, ...", "JSON {...}" or "BIN <base64>"',
    );
    expect(() => parseOrcaHeader("TEXT cpu=0.5")).toThrow(
      'endpoint-load-metrics: unknown TEXT key "cpu"; accepted: cpu_utilization, mem_utilization',
    );
    expect(() => parseOrcaHeader("TEXT cpu_utilization=high")).toThrow(
      'endpoint-load-metrics: TEXT value of cpu_utilization must be a finite number, got "high"',
    );
    expect(() => parseOrcaHeader("TEXT cpu_utilization")).toThrow("is not key=value or key:value");
    expect(() => parseOrcaHeader("JSON {")).toThrow("endpoint-load-metrics: JSON form does not parse");
    expect(() => parseOrcaHeader("JSON [1]")).toThrow("JSON form must be an object");
    expect(() => parseOrcaHeader('JSON {"__proto__": 1}')).toThrow('unknown JSON key "__proto__"');
  });
});
