import { hostname } from "node:os";
import type {
  DescMessage,
  DescMethod,
  DescMethodStreaming,
  DescMethodUnary,
  MessageInitShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { createBalancer } from "@meshlite/balancers";
import { type CallWatcher, consoleLogger, parseTarget } from "@meshlite/core";
import { createInFlightCalls, createPool, NoEndpointError, type Subchannel } from "@meshlite/pool";
import { createEndpointTransport, type Protocol, runsOnFrameEngine } from "@meshlite/transport";
import { createFrameEngineConnection } from "@meshlite/transport/connection";
import type { CallContext } from "./call-context.js";
import { type ChannelOptions, connectTransportOptions, validateChannelOptions } from "./channel-options.js";
import { createHealthWatcher } from "./health-check.js";
import { createLoadReportStreams } from "./load-report-stream.js";
import { callTimeoutMs, createMethodSettings } from "./method-settings.js";
import { createRetryThrottle, methodName } from "./retry-policy.js";
import { sendStream, sendUnary } from "./send-call.js";
import { type ServiceConfigOptions, translateServiceConfig } from "./service-config.js";
import { chooseServiceConfig } from "./service-config-choice.js";
import { type MergedOptions, mergeServiceConfig } from "./service-config-merge.js";
import type { ChannelSnapshot, ServiceConfigSnapshot } from "./snapshot.js";
import { withMessages } from "./stream-response.js";

/**
 * A Connect transport that balances every call over the endpoints of a
 * target. Pass it to `createClient`.
 */
export interface Channel extends Transport {
  /** Endpoints, their connection state, calls in flight and latency estimates. */
  snapshot(): ChannelSnapshot;
  /**
   * Stops resolving and refuses new calls, lets the calls already started
   * finish (up to `closeGraceMs`), then closes every connection. Nothing is
   * left that keeps the event loop alive.
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export function createChannel(explicit: ChannelOptions): Channel {
  validateChannelOptions(explicit);
  const api = "createChannel";
  const logger = explicit.logger ?? consoleLogger;
  // The service config becomes options; from here on the channel reads only those.
  const ownConfig = explicit.serviceConfig === undefined ? undefined : translateServiceConfig(explicit.serviceConfig);
  const merged = merge(ownConfig, "serviceConfig");
  const options = merged.options;
  const closeGraceMs = options.closeGraceMs ?? 10_000;
  const protocol: Protocol = options.protocol ?? "grpc";
  let transportOptions = connectTransportOptions(options);
  let settingsOf = createMethodSettings(options);
  let throttle = createRetryThrottle(options.retry?.budget);
  const dnsConfig = explicit.dnsServiceConfig === true;
  const dnsHost = dnsConfig ? dnsHostOf(explicit) : "";
  const configState: ServiceConfigSnapshot = { source: ownConfig ? "options" : "none", updates: 0, rejected: 0 };
  let running: MergedOptions = merged;
  let balancerKey = ownConfig?.balancerKey;
  const userEmit = options.onEvent ?? (() => {});
  const loadReportStreams = options.outOfBandLoadReports
    ? createLoadReportStreams(
        options.outOfBandLoadReports,
        (address) => pool.subchannels().find((sc) => sc.key === address),
        transportOf,
        logger,
      )
    : undefined;
  const emit: typeof userEmit = loadReportStreams
    ? (event) => {
        loadReportStreams.onEvent(event);
        userEmit(event);
      }
    : userEmit;
  const healthWatcher = options.healthCheck ? createHealthWatcher(options.healthCheck, transportOf, logger) : undefined;
  let transports = new WeakMap<Subchannel, Transport>();
  function transportOf(sc: Subchannel): Transport {
    let transport = transports.get(sc);
    if (transport === undefined) {
      transport = createEndpointTransport({
        ...transportOptions,
        // The kind of connection the pool makes for this protocol (frameEngine below).
        connection: sc.connection as Parameters<typeof createEndpointTransport>[0]["connection"],
        protocol,
        ...(options.grpcImplementation ? { grpcImplementation: options.grpcImplementation } : {}),
      });
      transports.set(sc, transport);
    }
    return transport;
  }

  let poolStarted = false;
  // The lean gRPC transport runs on meshlite's own HTTP/2; connect-node's
  // transports on node:http2 (createPool's default).
  const frameEngine = runsOnFrameEngine(protocol, options.grpcImplementation);
  const pool = createPool({
    api,
    target: options.target,
    logger,
    onEvent: emit,
    ...(frameEngine ? { connection: (o) => createFrameEngineConnection(o) } : {}),
    ...pick(options, [
      "balancer",
      "resolver",
      "resolverOptions",
      "tls",
      "authority",
      "connectTimeoutMs",
      "backoff",
      "keepalive",
      "maxConnectionsPerEndpoint",
      "minConnectionsPerEndpoint",
      "extraConnectionIdleMs",
      "loadOptions",
      "outlierDetection",
      "locality",
      "waitForReadyMs",
      "slowStart",
      "subset",
      "overloadPenalty",
      "limits",
    ]),
    ...(dnsConfig
      ? { resolverOptions: { ...options.resolverOptions, serviceConfig: true }, onServiceConfig: onDnsServiceConfig }
      : {}),
    ...(healthWatcher ? { healthWatcher } : {}),
  });
  poolStarted = true;

  /** Translates and merges a service config; logs what it could only approximate and each conflict. */
  function merge(config: ServiceConfigOptions | undefined, source: string): MergedOptions {
    const result = mergeServiceConfig(explicit, config, source);
    for (const note of config?.notes ?? []) logger.warn(`${api}: ${source}: ${note}`);
    for (const conflict of result.conflicts) logger.warn(`${api}: ${conflict}`);
    return result;
  }

  /** A TXT record of the target's name changed (gRFC A2): run its config, or the channel's own when it is gone. */
  function onDnsServiceConfig(text: string | undefined) {
    // A resolver may report before createPool returned.
    if (!poolStarted) return queueMicrotask(() => onDnsServiceConfig(text));
    const source = `DNS TXT _grpc_config.${dnsHost}`;
    const prefix = `${api}: ${source}: `;
    let next: MergedOptions;
    let fromDns: ServiceConfigOptions | undefined;
    try {
      const chosen = text === undefined ? undefined : chooseServiceConfig(text, client, prefix);
      fromDns = chosen && translateServiceConfig(chosen.config, prefix, chosen.path);
      next = fromDns ? mergeServiceConfig(explicit, fromDns, `the service config of ${source}`) : merged;
      const nextSettings = createMethodSettings(next.options);
      if (fromDns) {
        for (const note of fromDns.notes) logger.warn(`${prefix}${note}`);
        for (const conflict of next.conflicts) logger.warn(`${api}: ${conflict}`);
      }
      settingsOf = nextSettings;
    } catch (error) {
      const message = (error as Error).message;
      configState.rejected++;
      configState.lastError = message;
      logger.warn(`${message}; keeping the service config that runs now`, { target });
      emit({ type: "service-config", status: "rejected", source, error: message });
      return;
    }
    install(next.options, fromDns ? fromDns.balancerKey : ownConfig?.balancerKey);
    running = next;
    configState.updates++;
    configState.source = fromDns ? "dns" : ownConfig ? "options" : "none";
    logger.info(
      `${api}: ${fromDns ? `applied the service config of ${source}` : `${source} has no service config for this client; running the channel's own`}`,
      { target },
    );
    emit({ type: "service-config", status: fromDns ? "applied" : "removed", source });
  }

  /** Puts a new set of options into force (the method settings are in already). */
  function install(next: ChannelOptions, nextBalancerKey: string | undefined) {
    const previous = running.options;
    if (JSON.stringify(next.retry?.budget) !== JSON.stringify(previous.retry?.budget)) {
      throttle = createRetryThrottle(next.retry?.budget);
    }
    if (next.readMaxBytes !== previous.readMaxBytes || next.writeMaxBytes !== previous.writeMaxBytes) {
      transportOptions = connectTransportOptions(next);
      transports = new WeakMap();
    }
    if (explicit.balancer === undefined && nextBalancerKey !== balancerKey) {
      pool.setBalancer(createBalancer(next.balancer, api));
      balancerKey = nextBalancerKey;
    }
    for (const key of ["healthCheck", "outOfBandLoadReports"] as const) {
      if (JSON.stringify(next[key]) !== JSON.stringify(previous[key])) {
        logger.warn(`${api}: ${key} from a DNS service config takes effect only for a new channel`, { target });
      }
    }
  }
  const target = options.target;

  const ctx: CallContext = {
    target,
    tryPick: (avoid, call) => pool.tryPick(avoid, call),
    async waitForPick(deadline, signal, avoid, call, failFast) {
      try {
        return await pool.waitForPick(deadline, signal, avoid, call, failFast);
      } catch (e) {
        throw e instanceof NoEndpointError ? new ConnectError(e.message, e.code as Code) : e;
      }
    },
    transportOf,
    isClosing: () => closing !== undefined,
    get throttle() {
      return throttle;
    },
    emit,
    logger,
  };

  function deadlineOf(t: number | undefined): number | undefined {
    return t !== undefined && t > 0 ? performance.now() + t : undefined;
  }

  // Calls that entered unary()/stream() and have not ended; close() waits for them.
  const calls = createInFlightCalls();
  let closing: Promise<void> | undefined;
  function callStarted() {
    if (closing) throw new ConnectError(`channel to "${target}" is closed`, Code.Unavailable);
    calls.start();
  }
  const callEnded = () => calls.end();
  const observer = options.observer;
  function watch(method: DescMethod): CallWatcher | undefined {
    return observer?.callStarted({ method: methodName(method), knownMethod: true, target, side: "client" });
  }
  async function close(): Promise<void> {
    loadReportStreams?.close();
    pool.beginClose();
    await calls.settled(closeGraceMs);
    await pool.destroy();
  }

  const channel: Channel = {
    async unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      callStarted();
      const watcher = watch(method);
      const settings = settingsOf(method);
      try {
        const response = await sendUnary(
          ctx,
          settings,
          deadlineOf(callTimeoutMs(timeoutMs, settings)),
          method,
          signal,
          header,
          input,
          contextValues,
          watcher,
        );
        watcher?.ended(0);
        return response;
      } catch (e) {
        watcher?.ended(ConnectError.from(e).code);
        throw e;
      } finally {
        callEnded();
      }
    },

    async stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: HeadersInit | undefined,
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      callStarted();
      const watcher = watch(method);
      const settings = settingsOf(method);
      let response: StreamResponse<I, O>;
      try {
        const deadline = deadlineOf(callTimeoutMs(timeoutMs, settings));
        response = await sendStream(ctx, settings, deadline, method, signal, header, input, contextValues, watcher);
      } catch (e) {
        callEnded();
        watcher?.ended(ConnectError.from(e).code);
        throw e;
      }
      return withMessages(
        response,
        onDone(response.message, (code) => {
          callEnded();
          watcher?.ended(code);
        }),
      );
    },

    snapshot(): ChannelSnapshot {
      const configured = ownConfig !== undefined || dnsConfig;
      return {
        ...pool.snapshot(),
        closed: closing !== undefined,
        ...(configured ? { serviceConfig: { ...configState } } : {}),
      };
    },

    close() {
      closing ??= close();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return channel.close();
    },
  };
  return channel;
}

/**
 * Calls `done` once the messages are read to the end (code 0), fail (the
 * error's code), or the reader stops early (CANCELED).
 */
async function* onDone<T>(messages: AsyncIterable<T>, done: (code: number) => void): AsyncIterable<T> {
  let code: number = Code.Canceled;
  try {
    yield* messages;
    code = 0;
  } catch (e) {
    code = ConnectError.from(e).code;
    throw e;
  } finally {
    done(code);
  }
}

/** Drawn once per channel: which DNS service config choices (gRFC A2 `percentage`) apply to it. */
const client = { percentile: Math.floor(Math.random() * 100), hostname: hostname() };

/** The host whose `_grpc_config.` TXT record holds the service config; dnsServiceConfig needs a `dns:` target. */
function dnsHostOf(options: ChannelOptions): string {
  const target = parseTarget(options.target);
  if (target.scheme !== "dns") {
    throw new TypeError(
      `createChannel: dnsServiceConfig needs a dns: target (the service config is a TXT record of its host name), got "${options.target}"`,
    );
  }
  return target.host.replace(/\.$/, "");
}

/** The options among `keys` that are set, for passing on. */
function pick<T extends object, K extends keyof T>(options: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const picked: Partial<Pick<T, K>> = {};
  for (const key of keys) {
    if (options[key] !== undefined) picked[key] = options[key];
  }
  return picked;
}
