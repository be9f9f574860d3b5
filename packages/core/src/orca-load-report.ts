/**
 * A server's report of its own load: `xds.data.orca.v3.OrcaLoadReport`
 * (ORCA, gRFC A51), as plain numbers and records. Absent fields are 0 / empty,
 * as in proto3.
 */
export interface OrcaLoadReport {
  /** CPU in use as a fraction of what the server may use (may exceed 1 above a soft limit). */
  cpuUtilization: number;
  /** Memory in use as a fraction of what the server may use, 0 to 1. */
  memUtilization: number;
  /** Utilization as the application defines it (meshlite's interceptor: event-loop utilization); preferred to CPU by weighted round robin. */
  applicationUtilization: number;
  /** Requests per second the server serves. */
  rpsFractional: number;
  /** Errors per second. */
  eps: number;
  /** Deprecated integer requests per second (field 3); rpsFractional replaces it. */
  rps: number;
  /** Costs of this request by name (per-call reports). */
  requestCost: Record<string, number>;
  /** Utilizations by resource name, fractions. */
  utilization: Record<string, number>;
  /** Other metrics by name. */
  namedMetrics: Record<string, number>;
}

/** The trailer that carries a binary report (base64, as gRPC binary metadata). */
export const orcaTrailerName = "endpoint-load-metrics-bin";
/** The header that carries a report in Envoy's forms: `TEXT k=v, ...`, `JSON {...}` or `BIN <base64>`. */
export const orcaHeaderName = "endpoint-load-metrics";

/** An empty report (every field 0). */
export function emptyOrcaLoadReport(): OrcaLoadReport {
  return {
    cpuUtilization: 0,
    memUtilization: 0,
    applicationUtilization: 0,
    rpsFractional: 0,
    eps: 0,
    rps: 0,
    requestCost: Object.create(null),
    utilization: Object.create(null),
    namedMetrics: Object.create(null),
  };
}

/** Field numbers of OrcaLoadReport. */
const field = {
  cpuUtilization: 1,
  memUtilization: 2,
  rps: 3,
  requestCost: 4,
  utilization: 5,
  rpsFractional: 6,
  eps: 7,
  namedMetrics: 8,
  applicationUtilization: 9,
} as const;

const doubleFields = ["cpuUtilization", "memUtilization", "rpsFractional", "eps", "applicationUtilization"] as const;
const mapFields = ["requestCost", "utilization", "namedMetrics"] as const;

/** Protobuf reading of the few wire types a report uses. */
class Reader {
  offset = 0;
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const byte = this.byte();
      result += (byte & 0x7f) * scale;
      if ((byte & 0x80) === 0) return result;
      scale *= 128;
    }
    throw new Error("varint longer than 10 bytes");
  }
  double(): number {
    this.need(8);
    const value = this.view.getFloat64(this.offset, true);
    this.offset += 8;
    return value;
  }
  /** A length-delimited field: the reader of its bytes. */
  sub(): Reader {
    const length = this.varint();
    this.need(length);
    const sub = new Reader(this.bytes.subarray(this.offset, this.offset + length));
    this.offset += length;
    return sub;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.advance(8);
    else if (wireType === 2) this.advance(this.varint());
    else if (wireType === 5) this.advance(4);
    else throw new Error(`unsupported wire type ${wireType}`);
  }
  done(): boolean {
    return this.offset >= this.bytes.length;
  }
  private byte(): number {
    this.need(1);
    return this.bytes[this.offset++] as number;
  }
  private advance(n: number): void {
    this.need(n);
    this.offset += n;
  }
  private need(n: number): void {
    if (this.offset + n > this.bytes.length) throw new Error("truncated");
  }
}

/** Decodes a binary OrcaLoadReport; throws an Error saying what is wrong with the bytes. */
export function decodeOrcaLoadReport(bytes: Uint8Array): OrcaLoadReport {
  const report = emptyOrcaLoadReport();
  const reader = new Reader(bytes);
  try {
    while (!reader.done()) {
      const tag = reader.varint();
      const number = Math.floor(tag / 8);
      const wireType = tag % 8;
      const name = nameOf(number);
      if (name === undefined) {
        reader.skip(wireType);
      } else if (name === "rps" && wireType === 0) {
        report.rps = reader.varint();
      } else if ((doubleFields as readonly string[]).includes(name) && wireType === 1) {
        report[name as (typeof doubleFields)[number]] = reader.double();
      } else if ((mapFields as readonly string[]).includes(name) && wireType === 2) {
        const [key, value] = mapEntry(reader.sub());
        report[name as (typeof mapFields)[number]][key] = value;
      } else {
        throw new Error(`field ${name} (${number}) has wire type ${wireType}`);
      }
    }
  } catch (e) {
    throw new Error(`not an OrcaLoadReport (${(e as Error).message} at byte ${reader.offset} of ${bytes.length})`);
  }
  return report;
}

function nameOf(number: number): keyof typeof field | undefined {
  for (const [name, n] of Object.entries(field)) if (n === number) return name as keyof typeof field;
  return undefined;
}

function mapEntry(reader: Reader): [string, number] {
  let key = "";
  let value = 0;
  while (!reader.done()) {
    const tag = reader.varint();
    if (tag === (1 << 3) + 2) key = new TextDecoder().decode(reader.sub().bytes);
    else if (tag === (2 << 3) + 1) value = reader.double();
    else reader.skip(tag % 8);
  }
  return [key, value];
}

/** Encodes a report (fields that are 0 or empty are left out, as in proto3). */
export function encodeOrcaLoadReport(report: Partial<OrcaLoadReport>): Uint8Array {
  const out: number[] = [];
  const varint = (n: number) => {
    let v = n;
    while (v >= 0x80) {
      out.push((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(v);
  };
  const double = (n: number) => {
    const bytes = new Uint8Array(8);
    new DataView(bytes.buffer).setFloat64(0, n, true);
    out.push(...bytes);
  };
  for (const name of Object.keys(field) as Array<keyof typeof field>) {
    const value = report[name];
    if (value === undefined) continue;
    if (typeof value === "number") {
      if (value === 0) continue;
      if (name === "rps") {
        varint(field.rps << 3);
        varint(Math.max(0, Math.round(value)));
      } else {
        varint((field[name] << 3) | 1);
        double(value);
      }
      continue;
    }
    for (const [key, v] of Object.entries(value)) {
      const keyBytes = new TextEncoder().encode(key);
      varint((field[name] << 3) | 2);
      varint(1 + varintSize(keyBytes.length) + keyBytes.length + 1 + 8);
      varint((1 << 3) | 2);
      varint(keyBytes.length);
      out.push(...keyBytes);
      varint((2 << 3) | 1);
      double(v);
    }
  }
  return Uint8Array.from(out);
}

function varintSize(n: number): number {
  let size = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 128)) size++;
  return size;
}

/** The report in the `endpoint-load-metrics-bin` trailer's value (base64). Throws when it is not one. */
export function parseOrcaTrailer(value: string): OrcaLoadReport {
  // Several values joined by ", " (a repeated header): the last one counts.
  const last = value.slice(value.lastIndexOf(",") + 1).trim();
  return decodeOrcaLoadReport(Buffer.from(last, "base64"));
}

/** The names the TEXT and JSON forms accept, snake_case (JSON takes lowerCamelCase too), by report field. */
const textNames: Record<string, (typeof doubleFields)[number] | "rps"> = {
  cpu_utilization: "cpuUtilization",
  mem_utilization: "memUtilization",
  application_utilization: "applicationUtilization",
  rps_fractional: "rpsFractional",
  eps: "eps",
  rps: "rps",
};
const textMaps: Record<string, (typeof mapFields)[number]> = {
  request_cost: "requestCost",
  utilization: "utilization",
  named_metrics: "namedMetrics",
};
const accepted = `${Object.keys(textNames).join(", ")}, and ${Object.keys(textMaps)
  .map((m) => `${m}.NAME`)
  .join(", ")}`;

/**
 * The report in an `endpoint-load-metrics` header, in any of Envoy's forms:
 * `TEXT cpu_utilization=0.3, named_metrics.queue=4` (`key:value` too),
 * `JSON {"cpu_utilization": 0.3, "named_metrics": {"queue": 4}}` (proto3 JSON
 * names, snake_case or lowerCamelCase) or `BIN <base64 OrcaLoadReport>`.
 * Throws an Error naming what is wrong.
 */
export function parseOrcaHeader(value: string): OrcaLoadReport {
  const trimmed = value.trim();
  const space = trimmed.indexOf(" ");
  const form = space < 0 ? trimmed : trimmed.slice(0, space);
  const body = space < 0 ? "" : trimmed.slice(space + 1).trim();
  switch (form.toUpperCase()) {
    case "TEXT":
      return parseText(body);
    case "JSON":
      return parseJson(body);
    case "BIN":
      return decodeOrcaLoadReport(Buffer.from(body, "base64"));
  }
  throw new Error(
    `${orcaHeaderName}: unknown form ${JSON.stringify(form)}: expected "TEXT k=v, ...", "JSON {...}" or "BIN <base64>"`,
  );
}

function parseText(body: string): OrcaLoadReport {
  const report = emptyOrcaLoadReport();
  for (const part of body.split(",")) {
    const item = part.trim();
    if (item === "") continue;
    // Envoy writes key:value, others key=value; a metric name may hold ":" when "=" separates.
    const eq = item.indexOf("=");
    const at = eq >= 0 ? eq : item.indexOf(":");
    if (at <= 0) throw new Error(`${orcaHeaderName}: TEXT item ${JSON.stringify(item)} is not key=value or key:value`);
    set(report, item.slice(0, at).trim(), item.slice(at + 1).trim(), "TEXT");
  }
  return report;
}

function parseJson(body: string): OrcaLoadReport {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (e) {
    throw new Error(`${orcaHeaderName}: JSON form does not parse: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${orcaHeaderName}: JSON form must be an object, got ${JSON.stringify(parsed)}`);
  }
  const report = emptyOrcaLoadReport();
  for (const [rawKey, value] of Object.entries(parsed)) {
    const key = rawKey.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (Object.hasOwn(textMaps, key)) {
      if (typeof value !== "object" || value === null) {
        throw new Error(`${orcaHeaderName}: JSON ${rawKey} must be an object of numbers`);
      }
      for (const [name, v] of Object.entries(value)) set(report, `${key}.${name}`, v, "JSON");
    } else {
      set(report, key, value, "JSON");
    }
  }
  return report;
}

function set(report: OrcaLoadReport, key: string, raw: unknown, form: string): void {
  const value = typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value)) {
    throw new Error(`${orcaHeaderName}: ${form} value of ${key} must be a finite number, got ${JSON.stringify(raw)}`);
  }
  const dot = key.indexOf(".");
  const map = dot > 0 && Object.hasOwn(textMaps, key.slice(0, dot)) ? textMaps[key.slice(0, dot)] : undefined;
  if (map !== undefined) {
    report[map][key.slice(dot + 1)] = value;
    return;
  }
  const name = Object.hasOwn(textNames, key) ? textNames[key] : undefined;
  if (name === undefined)
    throw new Error(`${orcaHeaderName}: unknown ${form} key ${JSON.stringify(key)}; accepted: ${accepted}`);
  report[name] = value;
}
