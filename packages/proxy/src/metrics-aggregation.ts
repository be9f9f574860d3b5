/** One worker's `/metrics` text. */
export interface WorkerMetrics {
  /** The worker's label value ("0", "1", ...): its slot, kept by the worker that replaces it. */
  worker: string;
  /** Its exposition text (format 0.0.4, as createMetrics renders it). */
  text: string;
}

interface Family {
  help: string;
  type: string;
  /** Series text (name and labels) to its value, in order of first appearance. */
  samples: Map<string, number | string>;
}

/**
 * Merges the workers' exposition texts into one: counters and histograms are
 * summed series by series (so N calls through any workers count N), gauges
 * keep one series per worker with a `worker` label (an in-flight count sums,
 * a latency estimate or a connection state does not; `sum without (worker)`
 * does the summing where it makes sense). The text stays valid: each family's
 * HELP and TYPE once, then its series.
 */
export function aggregateMetrics(workers: readonly WorkerMetrics[]): string {
  const families = new Map<string, Family>();
  for (const { worker, text } of workers) {
    let family: Family | undefined;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      if (line.startsWith("# HELP ")) {
        const [name, help] = splitOnce(line.slice(7));
        family = families.get(name);
        if (family === undefined) {
          family = { help, type: "untyped", samples: new Map() };
          families.set(name, family);
        }
        continue;
      }
      if (line.startsWith("# TYPE ")) {
        const [name, type] = splitOnce(line.slice(7));
        family = families.get(name);
        if (family === undefined) {
          family = { help: "", type, samples: new Map() };
          families.set(name, family);
        }
        family.type = type;
        continue;
      }
      if (line.startsWith("#") || family === undefined) continue;
      // The value follows the last space; label values may hold spaces.
      const space = line.lastIndexOf(" ");
      const series = line.slice(0, space);
      const value = line.slice(space + 1);
      if (family.type === "gauge") {
        family.samples.set(withWorker(series, worker), value);
      } else {
        const before = family.samples.get(series);
        family.samples.set(series, (typeof before === "number" ? before : 0) + Number(value));
      }
    }
  }
  const out: string[] = [];
  for (const [name, f] of families) {
    out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
    for (const [series, value] of f.samples) out.push(`${series} ${value}`);
  }
  return `${out.join("\n")}\n`;
}

/** The sum of a counter's series in one exposition text (e.g. a worker's calls). */
export function counterTotal(text: string, name: string): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

function splitOnce(text: string): [string, string] {
  const space = text.indexOf(" ");
  return space < 0 ? [text, ""] : [text.slice(0, space), text.slice(space + 1)];
}

function withWorker(series: string, worker: string): string {
  const label = `worker="${worker}"`;
  if (series.endsWith("{}")) return `${series.slice(0, -2)}{${label}}`;
  return series.endsWith("}") ? `${series.slice(0, -1)},${label}}` : `${series}{${label}}`;
}
