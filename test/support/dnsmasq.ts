import { type ChildProcess, spawn } from "node:child_process";
import * as dgram from "node:dgram";
import { existsSync } from "node:fs";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closedPort } from "./free-port.js";

/** One SRV record: `name` points at `target:port`. */
export interface SrvRecordSpec {
  /** e.g. `_grpc._tcp.orders.test` */
  name: string;
  /** Host name the record points at (give it address records in `hosts`). */
  target: string;
  port: number;
  /** Default 0. */
  priority?: number;
  /** Default 0. */
  weight?: number;
}

/** TXT records: name -> the texts of its records (one record each; long ones are split into strings of 200). */
export type TxtRecords = Readonly<Record<string, readonly string[]>>;

/** Address records: name -> addresses (IPv4 become A records, IPv6 AAAA). */
export type HostRecords = Readonly<Record<string, readonly string[]>>;

/** Options of a test DNS server. */
export interface DnsmasqOptions {
  /** Address records. Default none. */
  hosts?: HostRecords;
  /** SRV records. Default none. */
  srv?: readonly SrvRecordSpec[];
  /** TXT records. Default none. */
  txt?: TxtRecords;
  /** TTL of every answer, in seconds. Default 5. */
  ttl?: number;
  /**
   * Domains answered from the records only: unknown names in them get
   * NXDOMAIN. Names outside them are forwarded to `upstream`, or REFUSED when
   * there is none. Default ["test"].
   */
  localDomains?: readonly string[];
  /** A DNS server (`127.0.0.1:PORT`) to forward other names to. Default none. */
  upstream?: string;
  /**
   * Validate forwarded answers with DNSSEC (root trust anchor, unsigned
   * answers rejected): an unsigned upstream then gives SERVFAIL. Default false.
   */
  dnssec?: boolean;
  /** Port on 127.0.0.1; default a free one. */
  port?: number;
}

/** A real dnsmasq process serving DNS on 127.0.0.1. */
export interface Dnsmasq {
  readonly host: string;
  readonly port: number;
  /** `127.0.0.1:PORT` */
  readonly address: string;
  /**
   * How many queries dnsmasq has received for `name` (of `type`, e.g. "A",
   * "AAAA", "SRV"; every type when omitted), since it was started first.
   */
  queryCount(name: string, type?: string): number;
  /** Replaces the address records; resolves once dnsmasq has re-read them (SIGHUP). */
  setHosts(hosts: HostRecords): Promise<void>;
  /**
   * Replaces the SRV records. dnsmasq reads SRV records only from its
   * configuration, which SIGHUP does not re-read, so this restarts it on the
   * same port (a gap of some milliseconds in which queries are refused).
   */
  setSrv(srv: readonly SrvRecordSpec[]): Promise<void>;
  /** Replaces the TXT records; like setSrv, this restarts dnsmasq on the same port. */
  setTxt(txt: TxtRecords): Promise<void>;
  /** Stops the process (the port then refuses queries). */
  stop(): Promise<void>;
  /** Starts it again on the same port after stop(). */
  start(): Promise<void>;
  /** Freezes the process (SIGSTOP): queries time out while the port stays bound. */
  pause(): void;
  /** Undoes pause(). */
  resume(): void;
  /** Stops the process and removes its files. */
  close(): Promise<void>;
}

const rootTrustAnchor = ".,20326,8,2,E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D";
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Whether to skip the tests that need dnsmasq: only when asked to with
 * MESHLITE_SKIP_DNS_TESTS=1. Without dnsmasq they fail, saying how to install
 * it (scripts/test-prerequisites.mjs installs it where it can), rather than
 * passing silently without having tested DNS.
 */
export function skipDnsTests(): boolean {
  return process.env.MESHLITE_SKIP_DNS_TESTS === "1";
}

/** The dnsmasq binary, or a clear error saying how to install it. */
export function dnsmasqPath(): string {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    const path = join(dir, "dnsmasq");
    if (dir !== "" && existsSync(path)) {
      return path;
    }
  }
  throw new Error("dnsmasq is not installed; install it with: apt-get update && apt-get install -y dnsmasq-base");
}

/** A port free for both UDP and TCP on 127.0.0.1 (dnsmasq binds both). */
async function freePort(): Promise<number> {
  for (let tries = 0; ; tries++) {
    const port = await closedPort("127.0.0.1");
    const socket = dgram.createSocket("udp4");
    const udpFree = await new Promise<boolean>((resolve) => {
      socket.once("error", () => resolve(false));
      socket.bind(port, "127.0.0.1", () => resolve(true));
    });
    await new Promise<void>((resolve) => socket.close(() => resolve()));
    if (udpFree || tries >= 20) {
      return port;
    }
  }
}

/** A TXT record's text as dnsmasq's quoted character-strings (at most 255 bytes each; 200 here). */
function txtStrings(text: string): string {
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += 200) parts.push(text.slice(i, i + 200));
  return parts.map((p) => `"${p.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`).join(",");
}

function hostsText(hosts: HostRecords): string {
  const lines: string[] = [];
  for (const [name, addresses] of Object.entries(hosts)) {
    for (const address of addresses) {
      if (net.isIP(address) === 0) {
        throw new Error(`dnsmasq helper: "${address}" for "${name}" is not an IP address`);
      }
      lines.push(`${address} ${name}`);
    }
  }
  return lines.join("\n") + "\n";
}

export async function startDnsmasq(options: DnsmasqOptions = {}): Promise<Dnsmasq> {
  const binary = dnsmasqPath();
  const dir = await mkdtemp(join(tmpdir(), "meshlite-dnsmasq-"));
  const hostsPath = join(dir, "hosts");
  const confPath = join(dir, "dnsmasq.conf");
  const host = "127.0.0.1";
  let srv = options.srv ?? [];
  let txt = options.txt ?? {};
  let port = options.port ?? 0;
  let child: ChildProcess | undefined;
  /** Times dnsmasq has logged reading the hosts file. */
  let reads = 0;
  let readWaiters: { count: number; resolve: () => void }[] = [];
  const queries: { type: string; name: string }[] = [];
  // Set MESHLITE_DNSMASQ_DEBUG=1 to see dnsmasq's log (every query) on stderr.
  const debug = process.env.MESHLITE_DNSMASQ_DEBUG === "1";

  async function writeAtomically(path: string, text: string) {
    const temp = `${path}.tmp`;
    await writeFile(temp, text);
    await rename(temp, path);
  }

  function confText(): string {
    const lines = [
      `port=${port}`,
      `listen-address=${host}`,
      "bind-interfaces",
      "no-resolv",
      "no-hosts",
      "no-poll",
      "no-negcache",
      "user=root",
      "pid-file=",
      "log-facility=-",
      `addn-hosts=${hostsPath}`,
      `local-ttl=${options.ttl ?? 5}`,
      ...(options.localDomains ?? ["test"]).map((domain) => `local=/${domain}/`),
      ...(options.upstream ? [`server=${options.upstream.replace(/:(\d+)$/, "#$1")}`] : []),
      ...(options.dnssec ? ["dnssec", `trust-anchor=${rootTrustAnchor}`, "dnssec-check-unsigned"] : []),
      "log-queries",
      ...srv.map((r) => `srv-host=${r.name},${r.target},${r.port},${r.priority ?? 0},${r.weight ?? 0}`),
      ...Object.entries(txt).flatMap(([name, texts]) => texts.map((text) => `txt-record=${name},${txtStrings(text)}`)),
    ];
    return lines.join("\n") + "\n";
  }

  function waitForRead(count: number): Promise<void> {
    if (reads >= count) {
      return Promise.resolve();
    }
    return new Promise((resolve) => readWaiters.push({ count, resolve }));
  }

  async function launch(): Promise<void> {
    await writeAtomically(confPath, confText());
    const target = reads + 1;
    const proc = spawn(binary, ["--keep-in-foreground", `--conf-file=${confPath}`], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child = proc;
    running.add(proc);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once("exit", () => {
        for (const p of running) {
          p.kill("SIGKILL");
        }
      });
    }
    let stderr = "";
    let partial = "";
    proc.stderr?.setEncoding("utf8");
    proc.stderr?.on("data", (chunk: string) => {
      if (debug) {
        process.stderr.write(chunk);
      }
      if (stderr.length < 100_000) {
        stderr += chunk;
      }
      const lines = (partial + chunk).split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        const query = /query\[(\w+)\] (\S+) from/.exec(line);
        if (query) {
          queries.push({ type: query[1] as string, name: query[2] as string });
        } else if (/read \S+ - \d+ (names|addresses)/.test(line)) {
          reads++;
        }
      }
      const ready = readWaiters.filter((w) => reads >= w.count);
      readWaiters = readWaiters.filter((w) => reads < w.count);
      for (const w of ready) {
        w.resolve();
      }
    });
    const exited = new Promise<never>((_, reject) => {
      proc.once("exit", (code, signal) => {
        running.delete(proc);
        reject(new Error(`dnsmasq exited (${signal ?? code}) before it was ready:\n${stderr}`));
      });
    });
    exited.catch(() => {});
    await Promise.race([waitForRead(target), exited]);
  }

  async function stopProcess(): Promise<void> {
    const proc = child;
    child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) {
      return;
    }
    const done = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    proc.kill("SIGCONT");
    proc.kill("SIGTERM");
    await done;
    running.delete(proc);
  }

  await writeAtomically(hostsPath, hostsText(options.hosts ?? {}));
  if (port === 0) {
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await launch();
        break;
      } catch (error) {
        // Another process took the port between the check and dnsmasq's bind.
        if (attempt >= 5 || !/Address already in use/.test(String(error))) {
          await rm(dir, { recursive: true, force: true });
          throw error;
        }
      }
    }
  } else {
    await launch();
  }

  return {
    host,
    port,
    address: `${host}:${port}`,
    queryCount(name, type) {
      return queries.filter((q) => q.name === name && (type === undefined || q.type === type)).length;
    },
    async setHosts(hosts) {
      await writeAtomically(hostsPath, hostsText(hosts));
      if (child === undefined) {
        return;
      }
      const target = reads + 1;
      child.kill("SIGHUP");
      await waitForRead(target);
    },
    async setSrv(records) {
      srv = records;
      if (child !== undefined) {
        await stopProcess();
        await launch();
      }
    },
    async setTxt(records) {
      txt = records;
      if (child !== undefined) {
        await stopProcess();
        await launch();
      }
    },
    stop: stopProcess,
    async start() {
      if (child === undefined) {
        await launch();
      }
    },
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
    async close() {
      await stopProcess();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
