import { describe, expect, it } from "vitest";
import { createMetrics } from "../src/metrics.js";

describe("metrics", () => {
  it("drops the per-endpoint series of an endpoint that left its route, and keeps the route's", () => {
    const live = new Set(["10.0.0.1:80", "10.0.0.2:80"]);
    const metrics = createMetrics({ liveEndpoints: (route) => (route === "echo" ? live : new Set()) });
    metrics.observeCall("echo", "10.0.0.1:80", 0, 0.001);
    metrics.observeCall("echo", "10.0.0.2:80", 14, 0.002);
    metrics.observeCall("echo", "10.0.0.2:80", 0, 0.002);
    let text = metrics.render();
    expect(text).toContain('meshlite_proxy_endpoint_calls_total{route="echo",endpoint="10.0.0.2:80",code="14"} 1');
    expect(text).toContain(
      'meshlite_proxy_endpoint_call_duration_seconds_count{route="echo",endpoint="10.0.0.2:80"} 2',
    );

    live.delete("10.0.0.2:80");
    text = metrics.render();
    expect(text).not.toContain('endpoint="10.0.0.2:80"');
    expect(text).toContain('meshlite_proxy_endpoint_calls_total{route="echo",endpoint="10.0.0.1:80",code="0"} 1');
    expect(text).toContain(
      'meshlite_proxy_endpoint_call_duration_seconds_count{route="echo",endpoint="10.0.0.1:80"} 1',
    );
    expect(text).toContain('meshlite_proxy_calls_total{route="echo",code="0"} 2');
    expect(text).toContain('meshlite_proxy_call_duration_seconds_count{route="echo"} 3');

    // Back in the set: its series start again from zero.
    live.add("10.0.0.2:80");
    metrics.observeCall("echo", "10.0.0.2:80", 0, 0.001);
    expect(metrics.render()).toContain(
      'meshlite_proxy_endpoint_calls_total{route="echo",endpoint="10.0.0.2:80",code="0"} 1',
    );
  });
});
