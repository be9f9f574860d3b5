/**
 * Why a DNS name did not resolve.
 *
 * - `nxdomain`: the server says the name does not exist.
 * - `nodata`: the name exists but has no records of the asked type(s).
 * - `timeout`: no answer from the DNS server in time.
 * - `refused`: the server refused to answer (REFUSED).
 * - `servfail`: the server failed (SERVFAIL), often its own upstream did.
 * - `unreachable`: the DNS server could not be contacted (connection refused).
 * - `bad-name`: the name is not a valid DNS name.
 * - `other`: anything else; the message carries the resolver's code.
 */
export type DnsErrorKind =
  | "nxdomain"
  | "nodata"
  | "timeout"
  | "refused"
  | "servfail"
  | "unreachable"
  | "bad-name"
  | "other";

/** One query that failed: the name asked and why. */
export interface DnsAttempt {
  readonly name: string;
  /** The record type asked (A, AAAA, SRV), or undefined when every type failed alike. */
  readonly type: string | undefined;
  readonly kind: DnsErrorKind;
  /** The c-ares error code, e.g. ENOTFOUND, or undefined for an empty answer. */
  readonly code: string | undefined;
}

const kindByCode: Record<string, DnsErrorKind> = {
  ENOTFOUND: "nxdomain",
  ENODATA: "nodata",
  ETIMEOUT: "timeout",
  EREFUSED: "refused",
  ESERVFAIL: "servfail",
  ECONNREFUSED: "unreachable",
  EBADNAME: "bad-name",
};

const describe: Record<DnsErrorKind, string> = {
  nxdomain: "NXDOMAIN (no such name)",
  nodata: "no address records (the name exists but has no records of the asked type)",
  timeout: "timeout (no answer from the DNS server)",
  refused: "REFUSED by the DNS server",
  servfail: "SERVFAIL (the DNS server failed to answer)",
  unreachable: "the DNS server is unreachable (connection refused)",
  "bad-name": "not a valid DNS name",
  other: "lookup failed",
};

/** Maps a c-ares error code (err.code of node:dns) to a kind. */
export function dnsErrorKind(code: string | undefined): DnsErrorKind {
  return (code !== undefined && kindByCode[code]) || "other";
}

/** Kinds that say the name has no answer, as opposed to the lookup itself failing. */
export function isEmptyAnswer(kind: DnsErrorKind): boolean {
  return kind === "nxdomain" || kind === "nodata";
}

/**
 * A DNS name that did not resolve. The message names the target name, the
 * reason and every name tried (after the search list) with the server asked.
 */
export class DnsResolutionError extends Error {
  override name = "DnsResolutionError";
  /** The primary reason: the first lookup failure, else nxdomain/nodata. */
  readonly kind: DnsErrorKind;
  constructor(
    /** The name as the target gives it. */
    readonly hostName: string,
    /** Every failed query, in order. */
    readonly attempts: readonly DnsAttempt[],
    /** The DNS server(s) asked, for the message. */
    readonly servers: readonly string[],
  ) {
    const primary = attempts.find((a) => !isEmptyAnswer(a.kind)) ??
      attempts.find((a) => a.kind === "nxdomain") ??
      attempts[0] ?? { name: hostName, type: undefined, kind: "other" as const, code: undefined };
    const reason =
      primary.kind === "other" && primary.code ? `${describe.other} (${primary.code})` : describe[primary.kind];
    const tried = [...new Set(attempts.map((a) => a.name))];
    const details =
      tried.length > 1 || tried[0] !== hostName
        ? `; tried ${attempts.map((a) => `${a.name}${a.type ? ` ${a.type}` : ""} (${a.code ?? "empty"})`).join(", ")}`
        : "";
    const via = servers.length > 0 ? ` via ${servers.join(", ")}` : "";
    super(`DNS name "${hostName}" did not resolve: ${reason}${details}${via}`);
    this.kind = primary.kind;
  }
}
