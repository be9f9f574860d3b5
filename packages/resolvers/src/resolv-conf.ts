import { readFileSync } from "node:fs";

/** What meshlite takes from a resolv.conf file. */
export interface ResolvConf {
  /** `nameserver` lines, in order (IP addresses). */
  readonly nameservers: readonly string[];
  /** The search list (`search`, or `domain` when there is no `search`), without trailing dots. */
  readonly search: readonly string[];
  /** `options ndots:N`; 1 when not given, capped at 15 as glibc does. */
  readonly ndots: number;
}

export const defaultResolvConfPath = "/etc/resolv.conf";

/** No name servers (the system's are used), no search list, ndots 1. */
export const emptyResolvConf: ResolvConf = { nameservers: [], search: [], ndots: 1 };

/**
 * Parses resolv.conf text the way glibc and musl do for the parts meshlite
 * uses: the last `search` or `domain` line wins, `#` and `;` start comments,
 * unknown lines and options are ignored.
 */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: string[] = [];
  let search: string[] = [];
  let ndots = 1;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.replace(/[#;].*$/, "").trim();
    if (line === "") {
      continue;
    }
    const [keyword, ...args] = line.split(/\s+/);
    switch (keyword) {
      case "nameserver":
        if (args[0] !== undefined) {
          nameservers.push(args[0]);
        }
        break;
      case "domain":
      case "search":
        search = args.map((domain) => domain.replace(/\.$/, "")).filter((domain) => domain !== "");
        break;
      case "options":
        for (const option of args) {
          const match = /^ndots:(\d+)$/.exec(option);
          if (match) {
            ndots = Math.min(Number(match[1]), 15);
          }
        }
        break;
    }
  }
  return { nameservers, search, ndots };
}

/**
 * Reads and parses a resolv.conf file. A missing file means no search list,
 * ndots 1 and the system's name servers (as on a machine without one); other
 * read errors are thrown.
 */
export function readResolvConf(path: string): ResolvConf {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      return emptyResolvConf;
    }
    throw new Error(`cannot read resolv.conf "${path}": ${(error as Error).message}`);
  }
  return parseResolvConf(text);
}

/**
 * The names to query for `name`, in order, as a stub resolver inside a pod
 * would: a name ending in "." is absolute and queried alone; a name with at
 * least `ndots` dots is tried as given first, then with each search domain;
 * a shorter name is tried with each search domain first, then as given.
 * Returned names carry no trailing dot.
 */
export function searchNames(name: string, search: readonly string[], ndots: number): string[] {
  if (name.endsWith(".")) {
    return [name.slice(0, -1)];
  }
  const dots = name.split(".").length - 1;
  const withDomains = search.map((domain) => `${name}.${domain}`);
  const names = dots >= ndots ? [name, ...withDomains] : [...withDomains, name];
  return [...new Set(names)];
}
