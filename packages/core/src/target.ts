import { isIP, isIPv4, isIPv6 } from "node:net";
import { formatHostPort } from "./endpoint.js";

/** A host and a port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** What every parsed target has. */
interface TargetBase {
  /** The target string as given. */
  readonly raw: string;
  /**
   * The service's name as callers know it: the `:authority` of every call
   * and, with TLS, the server name (SNI) and the name the certificate must
   * carry, whichever endpoint address is dialled.
   */
  readonly authority: string;
}

/** `dns:///host:port`, `dns://SERVER/host:port` or bare `host:port`. */
export interface DnsTarget extends TargetBase {
  readonly scheme: "dns";
  /** The name to resolve. */
  readonly host: string;
  /** The port every resolved address is dialled on (443 when not given). */
  readonly port: number;
  /** The DNS server to ask, when the target names one. */
  readonly dnsServer?: HostPort;
}

/** `static:///a:p,b:p`, `ipv4:a:p,b:p` or `ipv6:[a]:p,[b]:p`. */
export interface StaticTarget extends TargetBase {
  readonly scheme: "static";
  /** The form it was written in. */
  readonly form: "static" | "ipv4" | "ipv6";
  /** The addresses, in the order given, without duplicates. */
  readonly addresses: readonly HostPort[];
}

/** `k8s:///service.namespace:port` or `kubernetes:///service.namespace:port`. */
export interface KubernetesTarget extends TargetBase {
  readonly scheme: "k8s";
  readonly service: string;
  /** The namespace; undefined means the client's own (in-cluster) or the kubeconfig context's. */
  readonly namespace?: string;
  /** Port number, or the name of the service port. */
  readonly port: number | string;
}

/** Every target form meshlite understands, parsed. */
export type Target = DnsTarget | StaticTarget | KubernetesTarget;

/** The schemes of parsed targets; resolvers are registered by these. */
export type TargetScheme = Target["scheme"];

/** The forms `parseTarget` accepts, for error messages. */
export const acceptedTargetForms = [
  "dns:///host:port                      DNS, A/AAAA records (port defaults to 443)",
  "dns://DNS_SERVER_IP[:PORT]/host:port  DNS, asking that server",
  "host:port                             same as dns:///host:port",
  "static:///host:port,host:port,...     a fixed list (IPs or host names)",
  "ipv4:a.b.c.d:port,...                 a fixed list of IPv4 addresses",
  "ipv6:[addr]:port,...                  a fixed list of IPv6 addresses",
  "k8s:///service.namespace:port         Kubernetes EndpointSlices (port number or name; kubernetes:/// too)",
];

/** A target string that could not be parsed; the message says why and lists the accepted forms. */
export class TargetError extends Error {
  override name = "TargetError";
  constructor(
    readonly target: string,
    readonly problem: string,
  ) {
    super(`invalid target "${target}": ${problem}.\nAccepted forms:\n  ${acceptedTargetForms.join("\n  ")}`);
  }
}

const defaultPort = 443;
const defaultDnsPort = 53;
const schemePattern = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const hostNamePattern =
  /^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$/;
const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const portNamePattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Parses a target string (gRPC naming plus `static:` and `k8s:`) into a typed
 * structure. Throws TargetError naming the bad part.
 */
export function parseTarget(raw: string): Target {
  if (typeof raw !== "string") {
    throw new TargetError(String(raw), `expected a string, got ${typeof raw}`);
  }
  const target = raw.trim();
  if (target === "") {
    throw new TargetError(raw, "the target is empty");
  }
  const match = schemePattern.exec(target);
  const scheme = match?.[1]?.toLowerCase();
  const rest = match ? target.slice(match[0].length) : target;
  switch (scheme) {
    case "dns":
      return parseDns(raw, rest);
    case "static":
      return parseStatic(raw, "static", stripEmptyAuthority(raw, rest));
    case "ipv4":
    case "ipv6":
      return parseStatic(raw, scheme, stripEmptyAuthority(raw, rest));
    case "k8s":
    case "kubernetes":
      return parseKubernetes(raw, stripEmptyAuthority(raw, rest));
    case "unix":
    case "unix-abstract":
    case "vsock":
    case "xds":
    case "http":
    case "https":
      throw new TargetError(raw, `the scheme "${scheme}:" is not supported`);
  }
  if (scheme !== undefined && rest.startsWith("//")) {
    throw new TargetError(raw, `unknown scheme "${scheme}:"`);
  }
  // No scheme (or "host:port", which looks like one): a DNS name.
  return dnsTarget(raw, parseHostPort(raw, target, "host"));
}

/** Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. */
export function parseHostPort(raw: string, text: string, what: string, port = defaultPort): HostPort {
  if (text === "") {
    throw new TargetError(raw, `the ${what} is empty`);
  }
  let host: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0) {
      throw new TargetError(raw, `"${text}" has no closing "]"`);
    }
    host = text.slice(1, close);
    const after = text.slice(close + 1);
    if (after !== "") {
      if (!after.startsWith(":")) {
        throw new TargetError(raw, `unexpected "${after}" after "]" in "${text}"`);
      }
      portText = after.slice(1);
    }
    if (!isIPv6(host)) {
      throw new TargetError(raw, `"${host}" in brackets is not an IPv6 address`);
    }
  } else if (isIPv6(text)) {
    host = text;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon >= 0) {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
      if (host.includes(":")) {
        throw new TargetError(raw, `"${text}" is not host:port (write IPv6 addresses as [addr]:port)`);
      }
    } else {
      host = text;
    }
    if (host === "") {
      throw new TargetError(raw, `the host in "${text}" is empty`);
    }
    if (!isIP(host) && !hostNamePattern.test(host)) {
      throw new TargetError(raw, `"${host}" is not a valid host name or IP address`);
    }
  }
  return { host, port: portText === undefined ? port : parsePort(raw, portText, text) };
}

function parsePort(raw: string, portText: string, context: string): number {
  if (!/^\d{1,5}$/.test(portText)) {
    throw new TargetError(raw, `port "${portText}" in "${context}" is not a number from 1 to 65535`);
  }
  const port = Number(portText);
  if (port < 1 || port > 65535) {
    throw new TargetError(raw, `port ${port} in "${context}" is out of range (1 to 65535)`);
  }
  return port;
}

function stripEmptyAuthority(raw: string, rest: string): string {
  if (!rest.startsWith("//")) {
    return rest;
  }
  const slash = rest.indexOf("/", 2);
  const authority = slash < 0 ? rest.slice(2) : rest.slice(2, slash);
  if (authority !== "") {
    throw new TargetError(
      raw,
      `this scheme takes no authority, found "${authority}" (write three slashes: scheme:///...)`,
    );
  }
  return slash < 0 ? "" : rest.slice(slash + 1);
}

function parseDns(raw: string, rest: string): DnsTarget {
  if (!rest.startsWith("//")) {
    return dnsTarget(raw, parseHostPort(raw, rest, "host"));
  }
  const slash = rest.indexOf("/", 2);
  if (slash < 0) {
    throw new TargetError(
      raw,
      'expected "dns:///host:port" or "dns://SERVER/host:port": the "/" before the host is missing',
    );
  }
  const authority = rest.slice(2, slash);
  const name = parseHostPort(raw, rest.slice(slash + 1), "host");
  if (authority === "") {
    return dnsTarget(raw, name);
  }
  const server = parseHostPort(raw, authority, "DNS server", defaultDnsPort);
  if (!isIP(server.host)) {
    throw new TargetError(raw, `the DNS server "${authority}" must be an IP address (with an optional port)`);
  }
  return dnsTarget(raw, name, server);
}

function dnsTarget(raw: string, name: HostPort, dnsServer?: HostPort): DnsTarget {
  return {
    scheme: "dns",
    raw,
    authority: formatHostPort(name.host, name.port),
    host: name.host,
    port: name.port,
    ...(dnsServer ? { dnsServer } : {}),
  };
}

function parseStatic(raw: string, form: StaticTarget["form"], list: string): StaticTarget {
  if (list.trim() === "") {
    throw new TargetError(raw, "the address list is empty");
  }
  const seen = new Set<string>();
  const addresses: HostPort[] = [];
  for (const item of list.split(",")) {
    const text = item.trim();
    if (text === "") {
      throw new TargetError(raw, "the address list has an empty entry");
    }
    const address = parseHostPort(raw, text, "address");
    if (form === "ipv4" && !isIPv4(address.host)) {
      throw new TargetError(raw, `"${text}" is not an IPv4 address (ipv4: takes a.b.c.d:port entries)`);
    }
    if (form === "ipv6" && !isIPv6(address.host)) {
      throw new TargetError(raw, `"${text}" is not an IPv6 address (ipv6: takes [addr]:port entries)`);
    }
    const key = formatHostPort(address.host, address.port);
    if (!seen.has(key)) {
      seen.add(key);
      addresses.push(address);
    }
  }
  const first = addresses[0] as HostPort;
  return { scheme: "static", form, raw, authority: formatHostPort(first.host, first.port), addresses };
}

function parseKubernetes(raw: string, path: string): KubernetesTarget {
  const colon = path.lastIndexOf(":");
  if (colon < 0) {
    throw new TargetError(raw, "the port is missing (write k8s:///service.namespace:port, port number or name)");
  }
  const name = path.slice(0, colon);
  const portText = path.slice(colon + 1);
  let port: number | string;
  if (/^\d+$/.test(portText)) {
    port = parsePort(raw, portText, path);
  } else if (portNamePattern.test(portText) && portText.length <= 15) {
    port = portText;
  } else {
    throw new TargetError(
      raw,
      `"${portText}" is neither a port number nor a port name (lowercase letters, digits and "-", at most 15)`,
    );
  }
  // Accept service.namespace.svc and service.namespace.svc.cluster.local as well.
  const labels = name.replace(/\.svc(\.cluster\.local)?\.?$/, "").split(".");
  if (labels.length > 2) {
    throw new TargetError(raw, `"${name}" should be service or service.namespace`);
  }
  const [service, namespace] = labels as [string, string | undefined];
  for (const [what, value] of [
    ["service", service],
    ["namespace", namespace],
  ] as const) {
    if (value !== undefined && (!dns1123Label.test(value) || value.length > 63)) {
      throw new TargetError(raw, `${what} "${value}" is not a valid name (lowercase letters, digits and "-")`);
    }
  }
  const host = namespace === undefined ? service : `${service}.${namespace}.svc`;
  return {
    scheme: "k8s",
    raw,
    authority: typeof port === "number" ? `${host}:${port}` : host,
    service,
    ...(namespace !== undefined ? { namespace } : {}),
    port,
  };
}
