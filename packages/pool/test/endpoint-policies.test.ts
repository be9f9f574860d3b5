import { silentLogger } from "@meshlite/core";
import { describe, expect, it } from "vitest";
import {
  createDrainingPolicy,
  createHealthPolicy,
  createOutlierDetector,
  createPanicPolicy,
  createPolicyPipeline,
  createReadyPolicy,
  createSubchannel,
  type EndpointPolicy,
  type PolicyHooks,
  type PoolEvent,
  resolveOutlierDetection,
  type Subchannel,
} from "../src/index.js";
import { createFakeConnection, type FakeConnection } from "./support/fake-connection.js";

function subchannels(n: number): Subchannel[] {
  return Array.from({ length: n }, (_, i) =>
    createSubchannel(
      { host: `10.0.0.${i + 1}`, port: 80, weight: i + 1 },
      createFakeConnection({ host: `10.0.0.${i + 1}`, port: 80 }),
      undefined,
      () => {},
    ),
  );
}
const keys = (list: readonly Subchannel[]) => list.map((sc) => sc.key);
const ready = (sc: Subchannel) => (sc.connection as FakeConnection).set("ready");

function hooksOver(all: Subchannel[]) {
  const events: PoolEvent[] = [];
  let changes = 0;
  const hooks: PolicyHooks = {
    target: "static:///test",
    logger: silentLogger,
    emit: (e) => events.push(e),
    changed: () => changes++,
    endpoints: () => all,
  };
  return { hooks, events, changes: () => changes };
}

const failure = { ok: false, failure: true, pending: true, sample: true };
const success = { ok: true, failure: false, pending: true, sample: true };

describe("endpoint policies", () => {
  it("draining leaves out draining endpoints, and passes the list on untouched when none is", () => {
    const all = subchannels(3);
    const policy = createDrainingPolicy();
    const context = { inputOf: () => undefined };
    expect(policy.select(all, context)).toBe(all);
    (all[1] as Subchannel).draining = true;
    expect(keys(policy.select(all, context))).toEqual(["10.0.0.1:80", "10.0.0.3:80"]);
  });

  it("ready keeps only endpoints whose connection is ready", () => {
    const all = subchannels(3);
    ready(all[2] as Subchannel);
    expect(keys(createReadyPolicy().select(all, { inputOf: () => undefined }))).toEqual(["10.0.0.3:80"]);
  });

  it("health watches ready endpoints, keeps SERVING and unchecked ones, and stops watching on failure", () => {
    const all = subchannels(2);
    const { hooks, events, changes } = hooksOver(all);
    const reports = new Map<string, (s: "serving" | "not-serving" | "unimplemented") => void>();
    const stopped: string[] = [];
    const policy = createHealthPolicy((sc, report) => {
      reports.set(sc.key, report);
      return () => stopped.push(sc.key);
    }, hooks);
    const context = { inputOf: () => undefined };
    for (const sc of all) policy.onState?.(sc, "ready");
    expect(keys(policy.select(all, context))).toEqual([]);
    reports.get("10.0.0.2:80")?.("serving");
    expect(keys(policy.select(all, context))).toEqual(["10.0.0.2:80"]);
    expect(changes()).toBe(1);
    expect(events).toEqual([{ type: "endpoint-health", address: "10.0.0.2:80", status: "serving" }]);
    policy.onState?.(all[1] as Subchannel, "transient-failure");
    expect(stopped).toEqual(["10.0.0.2:80"]);
    policy.close?.();
    expect(stopped).toEqual(["10.0.0.2:80", "10.0.0.1:80"]);
  });

  it("outlier ejection ejects after consecutive failures, a success resets the count", () => {
    const all = subchannels(4);
    const { hooks, events } = hooksOver(all);
    const options = resolveOutlierDetection({ consecutiveFailures: 3, failureRate: false }, "test");
    const detector = createOutlierDetector(options as Exclude<typeof options, false>, hooks);
    const [a] = all as [Subchannel];
    const context = { inputOf: () => undefined };
    detector.onCallEnd?.(a, failure);
    detector.onCallEnd?.(a, failure);
    detector.onCallEnd?.(a, success);
    detector.onCallEnd?.(a, failure);
    detector.onCallEnd?.(a, failure);
    expect(detector.isEjected(a)).toBe(false);
    detector.onCallEnd?.(a, failure);
    expect(detector.isEjected(a)).toBe(true);
    expect(detector.ejections(a)).toBe(1);
    expect(keys(detector.select(all, context))).toEqual(["10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"]);
    expect(events).toEqual([
      { type: "endpoint-ejected", address: "10.0.0.1:80", reason: "consecutive-failures", durationMs: 30_000 },
    ]);
    detector.close?.();
  });

  it("panic mode hands back what ejection was given when it left too few", () => {
    const all = subchannels(4);
    const panic = createPanicPolicy(50);
    const beforeEjection = all;
    const context = { inputOf: (name: string) => (name === "outlier-ejection" ? beforeEjection : undefined) };
    expect(panic.select(all.slice(0, 2), context)).toEqual(all.slice(0, 2));
    expect(panic.select(all.slice(0, 1), context)).toBe(beforeEjection);
    // Without outlier ejection in the pipeline there is nothing to panic about.
    expect(panic.select(all.slice(0, 1), { inputOf: () => undefined })).toEqual(all.slice(0, 1));
  });
});

describe("the policy pipeline", () => {
  const recorder = (name: EndpointPolicy["name"], order: string[]): EndpointPolicy => ({
    name,
    select(candidates) {
      order.push(name);
      return candidates;
    },
  });

  it("runs policies in the documented order, whatever order they are given in", () => {
    const order: string[] = [];
    const pipeline = createPolicyPipeline([
      recorder("overload", order),
      recorder("panic", order),
      recorder("draining", order),
      recorder("slow-start", order),
      recorder("outlier-ejection", order),
      recorder("locality", order),
      recorder("health", order),
      recorder("subset", order),
      recorder("ready", order),
    ]);
    pipeline.run(subchannels(1));
    expect(order).toEqual([
      "draining",
      "ready",
      "health",
      "outlier-ejection",
      "panic",
      "locality",
      "subset",
      "slow-start",
      "overload",
    ]);
  });

  it("resets every endpoint's effective weight to its own before a run, so policies change weights from scratch", () => {
    const all = subchannels(2);
    const halve: EndpointPolicy = {
      name: "slow-start",
      select(candidates) {
        for (const sc of candidates) sc.weight /= 2;
        return candidates;
      },
    };
    const pipeline = createPolicyPipeline([halve]);
    pipeline.run(all);
    pipeline.run(all);
    expect(all.map((sc) => sc.weight)).toEqual([0.5, 1]);
  });

  it("feeds each policy what the one before it left", () => {
    const all = subchannels(3);
    for (const sc of all.slice(1)) ready(sc);
    (all[2] as Subchannel).draining = true;
    const pipeline = createPolicyPipeline([createReadyPolicy(), createDrainingPolicy()]);
    expect(keys(pipeline.run(all))).toEqual(["10.0.0.2:80"]);
  });

  it("rejects an unknown or repeated policy", () => {
    expect(() => createPolicyPipeline([{ name: "zones" as never, select: (c) => c }])).toThrow(
      'unknown endpoint policy "zones": expected one of "draining", "ready"',
    );
    expect(() => createPolicyPipeline([createReadyPolicy(), createReadyPolicy()])).toThrow(
      'endpoint policy "ready" appears twice',
    );
  });
});
