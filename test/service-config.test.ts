import { Code } from "@connectrpc/connect";
import type { Logger } from "@meshlite/core";
import { createChannel, ServiceConfigError } from "meshlite";
import { describe, expect, it } from "vitest";
import { EchoService } from "../gen/meshlite/echo/v1/echo_pb.js";
import { createMethodSettings } from "../src/method-settings.js";
import { translateServiceConfig } from "../src/service-config.js";
import { chooseServiceConfig } from "../src/service-config-choice.js";
import { mergeServiceConfig } from "../src/service-config-merge.js";

const target = "static:///127.0.80.1:1";
const retryPolicy = {
  maxAttempts: 3,
  initialBackoff: "0.01s",
  maxBackoff: "0.1s",
  backoffMultiplier: 2,
  retryableStatusCodes: ["UNAVAILABLE"],
};

/** The message createChannel throws for this service config. */
function errorOf(serviceConfig: unknown): string {
  try {
    const channel = createChannel({ target, serviceConfig: serviceConfig as never });
    void channel.close();
  } catch (error) {
    expect(error).toBeInstanceOf(ServiceConfigError);
    return (error as Error).message;
  }
  throw new Error("createChannel accepted the config");
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug() {}, info() {}, warn: (m: string) => void warnings.push(m), error() {} };
}

describe("service config: invalid configs fail at createChannel, naming the JSON path", () => {
  it.each([
    [
      {
        methodConfig: [
          { name: [{ service: "a.S" }] },
          { name: [{ service: "b.S" }], retryPolicy: { ...retryPolicy, maxAttempts: 1 } },
        ],
      },
      "createChannel: serviceConfig.methodConfig[1].retryPolicy.maxAttempts: must be an integer >= 2, got 1",
    ],
    [
      {
        methodConfig: [
          { name: [{ service: "a.S", method: "M" }] },
          { name: [{ service: "b.S" }, { service: "a.S", method: "M" }] },
        ],
      },
      'createChannel: serviceConfig.methodConfig[1].name[1]: duplicate name {"service":"a.S","method":"M"}, named first at serviceConfig.methodConfig[0].name[0]',
    ],
    [
      { methodConfig: [{ name: [{}] }, { name: [{ service: "" }] }] },
      'createChannel: serviceConfig.methodConfig[1].name[0]: duplicate name {"service":""}, named first at serviceConfig.methodConfig[0].name[0]',
    ],
    [
      { methodConfig: [{ name: [{ method: "M" }] }] },
      'createChannel: serviceConfig.methodConfig[0].name[0]: names a method without its service ({"method":"M"}); give "service" too, or neither for the default',
    ],
    [
      { methodConfig: [{ name: [{ service: "a.S" }], timeout: "1.5" }] },
      'createChannel: serviceConfig.methodConfig[0].timeout: must be a duration string of seconds such as "1.5s" or "0.100s", got "1.5"',
    ],
    [
      {
        methodConfig: [
          {
            name: [{ service: "a.S" }],
            retryPolicy: { ...retryPolicy, retryableStatusCodes: ["UNAVAILABLE", "FLAKY"] },
          },
        ],
      },
      'createChannel: serviceConfig.methodConfig[0].retryPolicy.retryableStatusCodes[1]: must be a status code name such as "UNAVAILABLE" or a number from 1 to 16, got "FLAKY"',
    ],
    [
      { methodConfig: [{ name: [{ service: "a.S" }], retryPolicy: { ...retryPolicy, retryableStatusCodes: [] } }] },
      "createChannel: serviceConfig.methodConfig[0].retryPolicy.retryableStatusCodes: must name at least one status code, got []",
    ],
    [
      { methodConfig: [{ name: [{ service: "a.S" }], retryPolicy: { ...retryPolicy, initialBackoff: "0s" } }] },
      'createChannel: serviceConfig.methodConfig[0].retryPolicy.initialBackoff: must be a duration above 0s, got "0s"',
    ],
    [
      { methodConfig: [{ name: [{ service: "a.S" }], retryPolicy, hedgingPolicy: { maxAttempts: 2 } }] },
      "createChannel: serviceConfig.methodConfig[0]: has both retryPolicy and hedgingPolicy; a method takes one of them",
    ],
    [
      { methodConfig: [{ name: [] }] },
      'createChannel: serviceConfig.methodConfig[0].name: must list at least one { "service", "method" }, got []',
    ],
    [
      { loadBalancingConfig: [{ grpclb: {} }, { xds_cluster_impl_experimental: {} }] },
      "createChannel: serviceConfig.loadBalancingConfig: none of the policies is supported (grpclb, xds_cluster_impl_experimental); meshlite supports pick_first, round_robin, least_request_experimental, weighted_round_robin, ring_hash_experimental",
    ],
    [
      { loadBalancingConfig: [{ round_robin: {}, pick_first: {} }] },
      'createChannel: serviceConfig.loadBalancingConfig[0]: must have exactly one policy name as its key, got ["round_robin","pick_first"]',
    ],
    [
      { loadBalancingConfig: [{ least_request_experimental: { choiceCount: 1 } }] },
      "createChannel: serviceConfig.loadBalancingConfig[0].least_request_experimental.choiceCount: must be an integer >= 2, got 1",
    ],
    [
      { loadBalancingConfig: [{ ring_hash_experimental: { minRingSize: 4096, maxRingSize: 1024 } }] },
      "createChannel: serviceConfig.loadBalancingConfig[0].ring_hash_experimental: minRingSize (4096) must not exceed maxRingSize (1024)",
    ],
    [
      { loadBalancingConfig: [{ pick_first: { shuffleAddressList: "yes" } }] },
      'createChannel: serviceConfig.loadBalancingConfig[0].pick_first.shuffleAddressList: must be true or false, got "yes"',
    ],
    [
      { loadBalancingPolicy: "least_request" },
      'createChannel: serviceConfig.loadBalancingPolicy: must be "round_robin" or "pick_first", got "least_request"',
    ],
    [
      { retryThrottling: { maxTokens: 0, tokenRatio: 0.1 } },
      "createChannel: serviceConfig.retryThrottling.maxTokens: must be an integer from 1 to 1000, got 0",
    ],
    [
      { methodConfig: [{ name: [{ service: "a.S" }], hedgingPolicy: { maxAttempts: 3, hedgingDelay: "-1s" } }] },
      'createChannel: serviceConfig.methodConfig[0].hedgingPolicy.hedgingDelay: must be a duration string of seconds such as "1.5s" or "0.100s", got "-1s"',
    ],
    ["{ methodConfig: [] }", "createChannel: serviceConfig: is not valid JSON"],
    [[1], "createChannel: serviceConfig: must be an object, got [1]"],
  ])("%j", (config, message) => {
    const got = errorOf(config);
    if (message.endsWith("is not valid JSON")) expect(got.startsWith(message)).toBe(true);
    else expect(got).toBe(message);
  });
});

describe("service config: translation into meshlite options", () => {
  it("the first supported policy wins, unknown ones are skipped; the legacy loadBalancingPolicy too", () => {
    const t = translateServiceConfig({
      loadBalancingConfig: [{ grpclb: {} }, { round_robin: {} }, { pick_first: {} }],
    });
    expect(t.balancer).toBe("round-robin");
    expect(t.balancerSource).toBe("loadBalancingConfig[1].round_robin");
    expect(translateServiceConfig({ loadBalancingPolicy: "ROUND_ROBIN" }).balancer).toBe("round-robin");
    // loadBalancingConfig takes precedence over the legacy field.
    expect(
      translateServiceConfig({ loadBalancingPolicy: "round_robin", loadBalancingConfig: [{ pick_first: {} }] })
        .balancer,
    ).toBe("pick-first");
  });

  it("policy fields become balancer options", () => {
    const lr = translateServiceConfig({ loadBalancingConfig: [{ least_request_experimental: { choiceCount: 3 } }] });
    expect(typeof lr.balancer === "object" && lr.balancer.name).toBe("least-request");
    const pf = translateServiceConfig({ loadBalancingConfig: [{ pick_first: { shuffleAddressList: true } }] });
    expect(typeof pf.balancer === "object" && pf.balancer.shuffleAddressList).toBe(true);
    const wrr = translateServiceConfig({
      loadBalancingConfig: [
        { weighted_round_robin: { blackoutPeriod: "1s", enableOobLoadReport: true, oobReportingPeriod: "2s" } },
      ],
    });
    expect(typeof wrr.balancer === "object" && wrr.balancer.name).toBe("weighted-round-robin");
    expect(wrr.outOfBandLoadReports).toEqual({ intervalMs: 2000 });
    const rh = translateServiceConfig({
      loadBalancingConfig: [{ ring_hash_experimental: { minRingSize: 16, maxRingSize: "64" } }],
    });
    expect(typeof rh.balancer === "object" && rh.balancer.name).toBe("ring-hash");
    expect(translateServiceConfig({ loadBalancingConfig: [{ ring_hash_experimental: {} }] }).balancer).toBe(
      "ring-hash",
    );
  });

  it("method configs: retry policies, timeouts, waitForReady, hedging; codes by name or number; attempts capped at 5", () => {
    const t = translateServiceConfig(
      JSON.stringify({
        methodConfig: [
          {
            name: [{ service: "meshlite.echo.v1.EchoService", method: "Echo" }],
            timeout: "1.5s",
            retryPolicy: { ...retryPolicy, maxAttempts: 7, retryableStatusCodes: ["unavailable", 8] },
          },
          { name: [{ service: "meshlite.echo.v1.EchoService" }], waitForReady: false, timeout: "0.250s" },
          {
            name: [{}],
            hedgingPolicy: { maxAttempts: 3, hedgingDelay: "0.05s", nonFatalStatusCodes: ["UNAVAILABLE"] },
          },
        ],
        retryThrottling: { maxTokens: 20, tokenRatio: 0.5 },
      }),
    );
    expect(t.retry).toEqual({
      methods: {
        "meshlite.echo.v1.EchoService/Echo": {
          maxAttempts: 5,
          initialBackoffMs: 10,
          maxBackoffMs: 100,
          backoffMultiplier: 2,
          retryableCodes: [Code.Unavailable, Code.ResourceExhausted],
        },
        "meshlite.echo.v1.EchoService": false,
        "": false,
      },
      budget: { maxTokens: 20, tokenRatio: 0.5 },
    });
    expect(t.methods).toEqual({
      "meshlite.echo.v1.EchoService/Echo": { timeoutMs: 1500 },
      "meshlite.echo.v1.EchoService": { waitForReady: false, timeoutMs: 250 },
      "": { hedging: { maxAttempts: 3, delayMs: 50, nonFatalCodes: [Code.Unavailable] } },
    });
  });

  it("gRPC's matching: method, then service, then the default entry, each as a whole", () => {
    const t = translateServiceConfig({
      methodConfig: [
        { name: [{ service: "meshlite.echo.v1.EchoService", method: "Echo" }], retryPolicy },
        { name: [{ service: "meshlite.echo.v1.EchoService" }], timeout: "2s" },
        { name: [{}], timeout: "9s", waitForReady: false },
      ],
    });
    const settingsOf = createMethodSettings(mergeServiceConfig({ target }, t, "serviceConfig").options);
    const echo = settingsOf(EchoService.method.echo);
    // The method's own entry decides: it has no timeout, so the channel's (none) applies, not the service's.
    expect(echo.timeoutMs).toBeUndefined();
    expect(echo.retry?.maxAttempts).toBe(3);
    expect(echo.failFast).toBe(false);
    const idem = settingsOf(EchoService.method.echoIdempotent);
    expect(idem.timeoutMs).toBe(2000);
    // Named without a retryPolicy: not retried by policy, even though it is idempotent.
    expect(idem.retry).toBeUndefined();
    const other = createMethodSettings(
      mergeServiceConfig(
        { target },
        translateServiceConfig({ methodConfig: [{ name: [{}], timeout: "9s", waitForReady: false }] }),
        "s",
      ).options,
    )(EchoService.method.echo);
    expect(other).toMatchObject({ timeoutMs: 9000, failFast: true, retry: undefined });
  });

  it("message size limits apply channel-wide: the largest, with a note when they differ per method", () => {
    const t = translateServiceConfig({
      methodConfig: [
        { name: [{ service: "a.S" }], maxResponseMessageBytes: 1000, maxRequestMessageBytes: 500 },
        { name: [{ service: "b.S" }], maxResponseMessageBytes: 4000 },
      ],
    });
    expect(t.readMaxBytes).toBe(4000);
    expect(t.writeMaxBytes).toBe(500);
    expect(t.notes).toHaveLength(2);
    expect(t.notes[0]).toBe(
      "message size limits apply to the whole channel in meshlite: readMaxBytes = 4000, the largest maxResponseMessageBytes of the service config",
    );
    expect(translateServiceConfig({ methodConfig: [{ name: [{}], maxResponseMessageBytes: 10 }] }).notes).toEqual([]);
  });
});

describe("service config: explicit options win", () => {
  it("a conflict is logged as a warning naming both; equal values are not a conflict", async () => {
    const logger = recordingLogger();
    const channel = createChannel({
      target,
      logger,
      balancer: "p2c",
      defaultTimeoutMs: 3000,
      readMaxBytes: 1000,
      retry: { budget: { maxTokens: 20, tokenRatio: 0.5 } },
      serviceConfig: {
        loadBalancingConfig: [{ round_robin: {} }],
        methodConfig: [{ name: [{}], timeout: "1s", maxResponseMessageBytes: 2000 }],
        retryThrottling: { maxTokens: 20, tokenRatio: 0.5 },
      },
    });
    await channel.close();
    expect(logger.warnings).toEqual([
      'createChannel: option balancer ("p2c") wins over serviceConfig loadBalancingConfig[0].round_robin ("round-robin")',
      "createChannel: option readMaxBytes (1000) wins over serviceConfig maxResponseMessageBytes (2000)",
      "createChannel: option defaultTimeoutMs (3000) wins over serviceConfig timeout of the default method config {} (1000)",
    ]);
    expect(channel.snapshot().balancer).toBe("p2c");
  });

  it("per method too: an explicit retry policy or method option wins over the config's for the same name", () => {
    const config = translateServiceConfig({
      methodConfig: [{ name: [{ service: "a.S", method: "M" }], timeout: "1s", waitForReady: true, retryPolicy }],
    });
    const { options, conflicts } = mergeServiceConfig(
      {
        target,
        retry: { methods: { "a.S/M": false } },
        methods: { "a.S/M": { timeoutMs: 2000 }, "b.S": { waitForReady: false } },
      },
      config,
      "serviceConfig",
    );
    expect(conflicts).toEqual([
      'option retry.methods["a.S/M"] (false) wins over serviceConfig retryPolicy of {"service":"a.S","method":"M"} ({"maxAttempts":3,"initialBackoffMs":10,"maxBackoffMs":100,"backoffMultiplier":2,"retryableCodes":[14]})',
      'option methods["a.S/M"].timeoutMs (2000) wins over serviceConfig methodConfig of {"service":"a.S","method":"M"} (1000)',
    ]);
    expect(options.retry?.methods).toEqual({ "a.S/M": false });
    expect(options.methods).toEqual({
      "a.S/M": { timeoutMs: 2000, waitForReady: true },
      "b.S": { waitForReady: false },
    });
  });

  it("without explicit options the config's balancer runs", async () => {
    const channel = createChannel({ target, serviceConfig: '{"loadBalancingConfig":[{"round_robin":{}}]}' });
    expect(channel.snapshot().balancer).toBe("round-robin");
    expect(channel.snapshot().serviceConfig).toEqual({ source: "options", updates: 0, rejected: 0 });
    await channel.close();
  });

  it("dnsServiceConfig needs a dns: target", () => {
    expect(() => createChannel({ target, dnsServiceConfig: true })).toThrow(
      'createChannel: dnsServiceConfig needs a dns: target (the service config is a TXT record of its host name), got "static:///127.0.80.1:1"',
    );
  });
});

describe("DNS service config choices (gRFC A2)", () => {
  const client = { percentile: 40, hostname: "web-1" };
  const config = (n: number) => ({ loadBalancingPolicy: n === 1 ? "round_robin" : "pick_first" });
  const choose = (choices: unknown) => chooseServiceConfig(JSON.stringify(choices), client, "dns: ");

  it("the first choice whose language, percentage and host name match wins", () => {
    expect(
      choose([
        { clientLanguage: ["go", "java"], serviceConfig: config(1) },
        { percentage: 40, serviceConfig: config(1) },
        { clientHostname: ["web-2"], serviceConfig: config(1) },
        { clientLanguage: ["NODE"], percentage: 41, clientHostname: ["web-1"], serviceConfig: config(2) },
        { serviceConfig: config(1) },
      ]),
    ).toEqual({ config: config(2), path: "grpc_config[3].serviceConfig" });
    expect(choose([{ clientLanguage: ["javascript"], serviceConfig: config(1) }])?.config).toEqual(config(1));
    expect(choose([{ clientLanguage: ["go"], serviceConfig: config(1) }])).toBeUndefined();
  });

  it("a bad choice is an error naming its path", () => {
    expect(() => choose([{ serviceConfig: config(1), clientLanguages: ["node"] }])).toThrow(
      "dns: grpc_config[0].clientLanguages: is not a field of a choice (clientLanguage, percentage, clientHostname, serviceConfig)",
    );
    expect(() => choose([{ percentage: 101, serviceConfig: config(1) }])).toThrow(
      "dns: grpc_config[0].percentage: must be an integer from 0 to 100, got 101",
    );
    expect(() => choose({ serviceConfig: config(1) })).toThrow(
      'dns: grpc_config: must be a list, got {"serviceConfig":{"loadBalancingPolicy":"round_robin"}}',
    );
  });
});
