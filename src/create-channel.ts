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
import { type CallWatcher, consoleLogger } from "@meshlite/core";
import { createInFlightCalls, createPool, NoEndpointError, type Subchannel } from "@meshlite/pool";
import { createEndpointTransport, type Protocol } from "@meshlite/transport";
import type { CallContext } from "./call-context.js";
import { type ChannelOptions, connectTransportOptions, validateChannelOptions } from "./channel-options.js";
import { createHealthWatcher } from "./health-check.js";
import { createLoadReportStreams } from "./load-report-stream.js";
import { createRetryPolicyLookup, createRetryThrottle, methodName } from "./retry-policy.js";
import { sendStream, sendUnary } from "./send-call.js";
import type { ChannelSnapshot } from "./snapshot.js";
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

export function createChannel(options: ChannelOptions): Channel {
  validateChannelOptions(options);
  const api = "createChannel";
  const logger = options.logger ?? consoleLogger;
  const closeGraceMs = options.closeGraceMs ?? 10_000;
  const protocol: Protocol = options.protocol ?? "grpc";
  const transportOptions = connectTransportOptions(options);
  const policyOf = createRetryPolicyLookup(options.retry);
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
  const transports = new WeakMap<Subchannel, Transport>();
  function transportOf(sc: Subchannel): Transport {
    let transport = transports.get(sc);
    if (transport === undefined) {
      transport = createEndpointTransport({
        ...transportOptions,
        connection: sc.connection,
        protocol,
        ...(options.grpcImplementation ? { grpcImplementation: options.grpcImplementation } : {}),
      });
      transports.set(sc, transport);
    }
    return transport;
  }

  const pool = createPool({
    api,
    target: options.target,
    logger,
    onEvent: emit,
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
    ...(healthWatcher ? { healthWatcher } : {}),
  });
  const target = options.target;

  const ctx: CallContext = {
    target,
    tryPick: (avoid, call) => pool.tryPick(avoid, call),
    async waitForPick(deadline, signal, avoid, call) {
      try {
        return await pool.waitForPick(deadline, signal, avoid, call);
      } catch (e) {
        throw e instanceof NoEndpointError ? new ConnectError(e.message, e.code as Code) : e;
      }
    },
    transportOf,
    isClosing: () => closing !== undefined,
    policyOf,
    throttle: createRetryThrottle(options.retry?.budget),
    hedging: options.retry?.hedging,
    emit,
    logger,
  };

  function deadlineOf(timeoutMs: number | undefined): number | undefined {
    const t = timeoutMs ?? options.defaultTimeoutMs;
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
      try {
        const response = await sendUnary(
          ctx,
          deadlineOf(timeoutMs),
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
      let response: StreamResponse<I, O>;
      try {
        response = await sendStream(ctx, deadlineOf(timeoutMs), method, signal, header, input, contextValues, watcher);
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
      return { ...pool.snapshot(), closed: closing !== undefined };
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

/** The options among `keys` that are set, for passing on. */
function pick<T extends object, K extends keyof T>(options: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const picked: Partial<Pick<T, K>> = {};
  for (const key of keys) {
    if (options[key] !== undefined) picked[key] = options[key];
  }
  return picked;
}
