import { describe, expect, it } from "vitest";
import { createMetrics } from "../src/metrics.js";
import { aggregateMetrics } from "../src/metrics-aggregation.js";

describe("aggregateMetrics", () => {
  it("sums counters and histograms series by series and labels gauges by worker", () => {
    const a = createMetrics();
    const b = createMetrics();
    a.observeCall("a route", "10.0.0.1:80", 0, 0.001);
    a.observeCall("a route", "10.0.0.1:80", 0, 0.2);
    b.observeCall("a route", "10.0.0.1:80", 0, 0.001);
    b.observeCall("a route", "10.0.0.2:80", 14, 3);
    a.addGauge("g", "a gauge", () => [[{}, 1]]);
    b.addGauge("g", "a gauge", () => [[{}, 2]]);
    const text = aggregateMetrics([
      { worker: "0", text: a.render() },
      { worker: "1", text: b.render() },
    ]);
    expect(text).toContain('meshlite_proxy_calls_total{route="a route",code="0"} 3');
    expect(text).toContain('meshlite_proxy_calls_total{route="a route",code="14"} 1');
    expect(text).toContain('meshlite_proxy_call_duration_seconds_bucket{route="a route",le="0.001"} 2');
    expect(text).toContain('meshlite_proxy_call_duration_seconds_bucket{route="a route",le="+Inf"} 4');
    expect(text).toContain('meshlite_proxy_call_duration_seconds_count{route="a route"} 4');
    expect(text).toContain(
      'meshlite_proxy_endpoint_call_duration_seconds_count{route="a route",endpoint="10.0.0.2:80"} 1',
    );
    expect(text).toContain('g{worker="0"} 1\ng{worker="1"} 2');
    // Every family's HELP and TYPE once, each before its series.
    for (const name of ["meshlite_proxy_calls_total", "meshlite_proxy_call_duration_seconds", "g"]) {
      expect(text.match(new RegExp(`^# TYPE ${name} `, "gm"))).toHaveLength(1);
      expect(text.indexOf(`# TYPE ${name} `)).toBeLessThan(text.indexOf(`\n${name}`));
    }
  });
});
