import type { ClientLimitName } from "./client-guard.js";

/**
 * A small Prometheus registry: counters and histograms keyed by label sets,
 * plus gauges read at scrape time. Text exposition format 0.0.4.
 */
export interface Metrics {
  /** Counts a finished call. */
  observeCall(route: string, endpoint: string | undefined, code: number, seconds: number): void;
  /** Counts a finished call by the zone of the endpoint it went to (endpoints with a zone only). */
  observeZoneCall(route: string, zone: string): void;
  /** Counts a client that ran into one of the proxy's limits. */
  observeClientLimit(limit: ClientLimitName): void;
  /** Adds a gauge family computed at scrape time. */
  addGauge(name: string, help: string, collect: () => Array<[Record<string, string>, number]>): void;
  /** The exposition text. */
  render(): string;
}

/** Options of createMetrics. */
export interface MetricsOptions {
  /**
   * The endpoints a route has now (draining ones included). At render, the
   * per-endpoint series of endpoints no longer there are dropped, so endpoints
   * that come and go do not pile up. Default: none are dropped.
   */
  liveEndpoints?(route: string): ReadonlySet<string>;
}

/** Latency buckets in seconds. */
const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface Histogram {
  labels: string;
  counts: number[];
  sum: number;
  count: number;
}

function labelText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`,
  );
  return parts.length > 0 ? `{${parts.join(",")}}` : "";
}

function withLabel(labels: string, extra: string): string {
  return labels === "" ? `{${extra}}` : `${labels.slice(0, -1)},${extra}}`;
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  // Series are created once per label set and found again through nested maps,
  // so a call costs a few map lookups, not string building. The arrays keep
  // them in creation order for rendering.
  const routeLatency: Histogram[] = [];
  const endpointLatency: Histogram[] = [];
  const gauges: Array<{ name: string; help: string; collect: () => Array<[Record<string, string>, number]> }> = [];
  interface Series {
    labels: string;
    count: number;
  }
  interface RouteSeries {
    latency: Histogram;
    byCode: Map<number, Series>;
    endpoints: Map<string, { latency: Histogram; byCode: Map<number, Series> }>;
  }
  const routes = new Map<string, RouteSeries>();
  const callSeries: Series[] = [];
  const zoneSeries: Series[] = [];
  const zonesByRoute = new Map<string, Map<string, Series>>();
  const endpointSeries: Series[] = [];
  const clientLimits = new Map<ClientLimitName, number>();

  function histogram(all: Histogram[], labels: string): Histogram {
    const h = { labels, counts: new Array(buckets.length).fill(0), sum: 0, count: 0 };
    all.push(h);
    return h;
  }
  function observe(h: Histogram, seconds: number) {
    h.sum += seconds;
    h.count++;
    for (let i = 0; i < buckets.length; i++) {
      if (seconds <= buckets[i]!) {
        h.counts[i]!++;
        break;
      }
    }
  }
  function renderHistograms(out: string[], name: string, help: string, all: readonly Histogram[]) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    for (const h of all) {
      let cumulative = 0;
      for (let i = 0; i < buckets.length; i++) {
        cumulative += h.counts[i]!;
        out.push(`${name}_bucket${withLabel(h.labels, `le="${buckets[i]}"`)} ${cumulative}`);
      }
      out.push(`${name}_bucket${withLabel(h.labels, 'le="+Inf"')} ${h.count}`);
      out.push(`${name}_sum${h.labels} ${h.sum}`, `${name}_count${h.labels} ${h.count}`);
    }
  }
  function routeSeries(route: string): RouteSeries {
    let r = routes.get(route);
    if (r === undefined) {
      r = { latency: histogram(routeLatency, labelText({ route })), byCode: new Map(), endpoints: new Map() };
      routes.set(route, r);
    }
    return r;
  }
  /** Drops the per-endpoint series of endpoints that left their route. */
  function dropGoneEndpoints(liveEndpoints: (route: string) => ReadonlySet<string>) {
    const gone = new Set<Histogram | Series>();
    for (const [route, r] of routes) {
      const live = liveEndpoints(route);
      for (const [endpoint, e] of r.endpoints) {
        if (live.has(endpoint)) continue;
        r.endpoints.delete(endpoint);
        gone.add(e.latency);
        for (const s of e.byCode.values()) gone.add(s);
      }
    }
    if (gone.size === 0) return;
    removeWhere(endpointLatency, (h) => gone.has(h));
    removeWhere(endpointSeries, (s) => gone.has(s));
  }
  function newSeries(map: Map<number, Series>, all: Series[], labels: string, code: number): Series {
    const s = { labels, count: 0 };
    map.set(code, s);
    all.push(s);
    return s;
  }

  return {
    observeCall(route, endpoint, code, seconds) {
      const r = routeSeries(route);
      const s = r.byCode.get(code) ?? newSeries(r.byCode, callSeries, labelText({ route, code: String(code) }), code);
      s.count++;
      observe(r.latency, seconds);
      if (endpoint !== undefined) {
        let e = r.endpoints.get(endpoint);
        if (e === undefined) {
          e = { latency: histogram(endpointLatency, labelText({ route, endpoint })), byCode: new Map() };
          r.endpoints.set(endpoint, e);
        }
        const es =
          e.byCode.get(code) ??
          newSeries(e.byCode, endpointSeries, labelText({ route, endpoint, code: String(code) }), code);
        es.count++;
        observe(e.latency, seconds);
      }
    },
    observeZoneCall(route, zone) {
      let byZone = zonesByRoute.get(route);
      if (byZone === undefined) {
        byZone = new Map();
        zonesByRoute.set(route, byZone);
      }
      let s = byZone.get(zone);
      if (s === undefined) {
        s = { labels: labelText({ route, zone }), count: 0 };
        byZone.set(zone, s);
        zoneSeries.push(s);
      }
      s.count++;
    },
    observeClientLimit(limit) {
      clientLimits.set(limit, (clientLimits.get(limit) ?? 0) + 1);
    },
    addGauge(name, help, collect) {
      gauges.push({ name, help, collect });
    },
    render() {
      // A call's endpoint is retired (its last call ended) before the call is
      // observed, so a series dropped here does not come back for it.
      if (options.liveEndpoints) dropGoneEndpoints(options.liveEndpoints);
      const out: string[] = [];
      out.push("# HELP meshlite_proxy_calls_total Calls finished, by route and gRPC status code.");
      out.push("# TYPE meshlite_proxy_calls_total counter");
      for (const { labels, count } of callSeries) out.push(`meshlite_proxy_calls_total${labels} ${count}`);
      out.push("# HELP meshlite_proxy_endpoint_calls_total Calls finished, by route, endpoint and gRPC status code.");
      out.push("# TYPE meshlite_proxy_endpoint_calls_total counter");
      for (const { labels, count } of endpointSeries) out.push(`meshlite_proxy_endpoint_calls_total${labels} ${count}`);
      out.push(
        "# HELP meshlite_proxy_zone_calls_total Calls finished, by route and the zone of the endpoint they went to.",
      );
      out.push("# TYPE meshlite_proxy_zone_calls_total counter");
      for (const { labels, count } of zoneSeries) out.push(`meshlite_proxy_zone_calls_total${labels} ${count}`);
      out.push(
        "# HELP meshlite_proxy_client_limited_total Clients that ran into a limit: abuse the connection was cut off for, timeouts, oversized requests.",
      );
      out.push("# TYPE meshlite_proxy_client_limited_total counter");
      for (const [limit, count] of clientLimits)
        out.push(`meshlite_proxy_client_limited_total${labelText({ limit })} ${count}`);
      renderHistograms(out, "meshlite_proxy_call_duration_seconds", "Call duration by route.", routeLatency);
      renderHistograms(
        out,
        "meshlite_proxy_endpoint_call_duration_seconds",
        "Call duration by route and endpoint.",
        endpointLatency,
      );
      for (const g of gauges) {
        out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
        for (const [labels, value] of g.collect()) out.push(`${g.name}${labelText(labels)} ${value}`);
      }
      return `${out.join("\n")}\n`;
    },
  };
}

function removeWhere<T>(list: T[], drop: (item: T) => boolean): void {
  let kept = 0;
  for (const item of list) if (!drop(item)) list[kept++] = item;
  list.length = kept;
}
