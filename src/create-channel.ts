import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { createBalancer } from "@meshlite/balancers";
import { consoleLogger, type Endpoint, getResolverFactory, parseTarget, type Target } from "@meshlite/core";
import { createEndpointTransport, createHttp2Connection, type TlsOptions } from "@meshlite/transport";
import type { CallContext } from "./call-context.js";
import { type ChannelOptions, connectTransportOptions, validateChannelOptions } from "./channel-options.js";
import { createEndpointPool, NoEndpointError } from "./endpoint-pool.js";
import { createHealthWatcher } from "./health-check.js";
import { resolveOutlierDetection } from "./outlier-detection.js";
import { createRetryPolicyLookup, createRetryThrottle } from "./retry-policy.js";
import { sendStream, sendUnary } from "./send-call.js";
import type { ChannelSnapshot } from "./snapshot.js";
import { withMessages } from "./stream-response.js";
import type { Subchannel } from "./subchannel.js";

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

export function createChannel(options: ChannelOptions): Channel {
  validateChannelOptions(options);
  const target: Target = parseTarget(options.target);
  const balancer = createBalancer(options.balancer);
  const logger = options.logger ?? consoleLogger;
  const tls: TlsOptions | undefined = options.tls === true ? {} : options.tls || undefined;
  const origin = originOf(tls, options.authority ?? target.authority);
  const waitForReadyMs = options.waitForReadyMs ?? 20_000;
  const closeGraceMs = options.closeGraceMs ?? 10_000;
  const transportOptions = connectTransportOptions(options);
  const policyOf = createRetryPolicyLookup(options.retry);
  const outlierDetection = resolveOutlierDetection(options.outlierDetection);
  const emit = options.onEvent ?? (() => {});
  const healthWatcher = options.healthCheck ? createHealthWatcher(options.healthCheck, transportOf, logger) : undefined;
  // Created last: everything above validates options, and a resolver starts working at once.
  const resolver =
    options.resolver ?? getResolverFactory(target)(target, { logger, options: options.resolverOptions ?? {} });
  const transports = new WeakMap<Subchannel, Transport>();
  function transportOf(sc: Subchannel): Transport {
    let transport = transports.get(sc);
    if (transport === undefined) {
      transport = createEndpointTransport({
        ...transportOptions,
        connection: sc.connection,
        protocol: options.protocol ?? "grpc",
        ...(options.grpcImplementation ? { grpcImplementation: options.grpcImplementation } : {}),
      });
      transports.set(sc, transport);
    }
    return transport;
  }

  const pool = createEndpointPool({
    target,
    resolver,
    balancer,
    logger,
    outlierDetection,
    onEvent: emit,
    ...(healthWatcher ? { healthWatcher } : {}),
    ...(options.loadOptions ? { loadOptions: options.loadOptions } : {}),
    createConnection: (endpoint: Endpoint) =>
      createHttp2Connection({
        origin,
        address: endpoint,
        ...(tls ? { tls } : {}),
        ...(options.connectTimeoutMs !== undefined ? { connectTimeoutMs: options.connectTimeoutMs } : {}),
        ...(options.backoff ? { backoff: options.backoff } : {}),
        ...(options.keepalive ? { keepalive: options.keepalive } : {}),
      }),
  });

  const ctx: CallContext = {
    target: target.raw,
    tryPick: (avoid) => pool.tryPick(avoid),
    async waitForPick(deadline, signal, avoid) {
      try {
        return await pool.waitForPick(deadline ?? performance.now() + waitForReadyMs, signal, avoid);
      } catch (e) {
        if (e instanceof NoEndpointError) {
          throw new ConnectError(e.message, e.reason === "aborted" ? Code.Canceled : Code.Unavailable);
        }
        throw e;
      }
    },
    transportOf,
    isClosing: () => closing !== undefined,
    policyOf,
    throttle: createRetryThrottle(options.retry?.budget),
    hedging: options.retry?.hedging,
    emit,
  };

  function deadlineOf(timeoutMs: number | undefined): number | undefined {
    const t = timeoutMs ?? options.defaultTimeoutMs;
    return t !== undefined && t > 0 ? performance.now() + t : undefined;
  }

  // Calls that entered unary()/stream() and have not ended; close() waits for them.
  let calls = 0;
  let closing: Promise<void> | undefined;
  let onIdle: (() => void) | undefined;
  function callStarted() {
    if (closing) throw new ConnectError(`channel to "${target.raw}" is closed`, Code.Unavailable);
    calls++;
  }
  function callEnded() {
    if (--calls === 0) onIdle?.();
  }
  async function close(): Promise<void> {
    pool.beginClose();
    if (calls > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, closeGraceMs);
        onIdle = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
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
      try {
        return await sendUnary(ctx, deadlineOf(timeoutMs), method, signal, header, input, contextValues);
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
      let response: StreamResponse<I, O>;
      try {
        response = await sendStream(ctx, deadlineOf(timeoutMs), method, signal, header, input, contextValues);
      } catch (e) {
        callEnded();
        throw e;
      }
      return withMessages(response, onDone(response.message, callEnded));
    },

    snapshot(): ChannelSnapshot {
      const lastError = pool.lastError();
      return {
        target: target.raw,
        balancer: balancer.name,
        closed: closing !== undefined,
        ...(lastError ? { lastError } : {}),
        endpoints: pool.subchannels().map((sc) => ({
          address: sc.key,
          state: sc.state(),
          draining: sc.draining,
          inFlight: sc.load.inFlight,
          pending: sc.load.pending,
          latencyMs: sc.load.latencyMs(),
          calls: sc.stats.calls,
          failures: sc.stats.failures,
          retries: sc.stats.retries,
          ejected: pool.isEjected(sc),
          ejections: sc.outlier.ejections,
          health: sc.health,
          weight: sc.endpoint.weight ?? 1,
          ...(sc.endpoint.zone ? { zone: sc.endpoint.zone } : {}),
        })),
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

/** Calls `done` once the messages are read to the end, fail, or the reader stops early. */
async function* onDone<T>(messages: AsyncIterable<T>, done: () => void): AsyncIterable<T> {
  try {
    yield* messages;
  } finally {
    done();
  }
}

function originOf(tls: TlsOptions | undefined, authority: string): string {
  const origin = `${tls ? "https" : "http"}://${authority}`;
  try {
    new URL(origin);
  } catch {
    throw new TypeError(`createChannel: authority ${JSON.stringify(authority)} is not a valid host[:port]`);
  }
  return origin;
}
