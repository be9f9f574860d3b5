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
import { createEndpointTransport, createHttp2Connection, isCallNotSent, type TlsOptions } from "@meshlite/transport";
import { type ChannelOptions, validateChannelOptions } from "./channel-options.js";
import { createEndpointPool, NoEndpointError } from "./endpoint-pool.js";
import { createReplayableInput } from "./replayable-input.js";
import type { ChannelSnapshot } from "./snapshot.js";
import type { Subchannel } from "./subchannel.js";

/**
 * A Connect transport that balances every call over the endpoints of a
 * target. Pass it to `createClient`.
 */
export interface Channel extends Transport {
  /** Endpoints, their connection state, calls in flight and latency estimates. */
  snapshot(): ChannelSnapshot;
  /**
   * Stops resolving and refuses new calls, lets in-flight calls finish (up to
   * `closeGraceMs`), then closes every connection. Nothing is left that keeps
   * the event loop alive.
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A call that never reached a server is sent again, once, on another endpoint. */
const maxNotSentRetries = 1;
/** Messages of a request stream kept for such a retry. */
const maxReplayMessages = 128;

export function createChannel(options: ChannelOptions): Channel {
  validateChannelOptions(options);
  const target: Target = parseTarget(options.target);
  const balancer = createBalancer(options.balancer);
  const logger = options.logger ?? consoleLogger;
  const tls: TlsOptions | undefined = options.tls === true ? {} : options.tls || undefined;
  const origin = `${tls ? "https" : "http"}://${options.authority ?? target.authority}`;
  validateOrigin(origin, options);
  const resolver =
    options.resolver ?? getResolverFactory(target)(target, { logger, options: options.resolverOptions ?? {} });
  const waitForReadyMs = options.waitForReadyMs ?? 20_000;
  const closeGraceMs = options.closeGraceMs ?? 10_000;
  const {
    interceptors,
    useBinaryFormat,
    jsonOptions,
    binaryOptions,
    sendCompression,
    acceptCompression,
    compressMinBytes,
    readMaxBytes,
    writeMaxBytes,
  } = options;
  const transportOptions = Object.fromEntries(
    Object.entries({
      interceptors,
      useBinaryFormat,
      jsonOptions,
      binaryOptions,
      sendCompression,
      acceptCompression,
      compressMinBytes,
      readMaxBytes,
      writeMaxBytes,
    }).filter(([, v]) => v !== undefined),
  );

  const transports = new WeakMap<Subchannel, Transport>();
  const pool = createEndpointPool({
    target,
    resolver,
    balancer,
    logger,
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

  function transportOf(sc: Subchannel): Transport {
    let transport = transports.get(sc);
    if (transport === undefined) {
      transport = createEndpointTransport({
        ...transportOptions,
        connection: sc.connection,
        protocol: options.protocol ?? "grpc",
      });
      transports.set(sc, transport);
    }
    return transport;
  }

  function deadlineOf(timeoutMs: number | undefined): number | undefined {
    const t = timeoutMs ?? options.defaultTimeoutMs;
    return t !== undefined && t > 0 ? performance.now() + t : undefined;
  }

  async function pick(deadline: number | undefined, signal: AbortSignal | undefined, avoid?: Subchannel) {
    const sc = pool.tryPick(avoid);
    if (sc) return sc;
    if (pool.isClosed()) throw closedError();
    try {
      return await pool.waitForPick(deadline ?? performance.now() + waitForReadyMs, signal, avoid);
    } catch (e) {
      if (e instanceof NoEndpointError) {
        if (e.reason === "aborted") throw new ConnectError(e.message, Code.Canceled);
        throw new ConnectError(e.message, Code.Unavailable);
      }
      throw e;
    }
  }

  function closedError() {
    return new ConnectError(`channel to "${target.raw}" is closed`, Code.Unavailable);
  }

  function remaining(deadline: number | undefined): number | undefined {
    if (deadline === undefined) return undefined;
    const left = Math.floor(deadline - performance.now());
    if (left <= 0)
      throw new ConnectError(`deadline exceeded before the call was sent to "${target.raw}"`, Code.DeadlineExceeded);
    return left;
  }

  function notSentError(e: unknown, sc: Subchannel): ConnectError {
    const cause = e instanceof Error ? e.message : String(e);
    return new ConnectError(
      `call to "${target.raw}" was not sent (endpoint ${sc.key}): ${cause}`,
      Code.Unavailable,
      undefined,
      undefined,
      e,
    );
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
      const deadline = deadlineOf(timeoutMs);
      let avoid: Subchannel | undefined;
      for (let attempt = 0; ; attempt++) {
        const sc = await pick(deadline, signal, avoid);
        const startedAt = sc.begin();
        try {
          const response = await transportOf(sc).unary(
            method,
            signal,
            remaining(deadline),
            header,
            input,
            contextValues,
          );
          sc.end(startedAt, { ok: true, pending: true, sample: true });
          return response;
        } catch (e) {
          const notSent = isCallNotSent(e);
          sc.end(startedAt, { ok: false, pending: true, sample: !notSent });
          if (!notSent) throw e;
          if (attempt >= maxNotSentRetries || pool.isClosed() || signal?.aborted) throw notSentError(e, sc);
          avoid = sc;
        }
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
      const deadline = deadlineOf(timeoutMs);
      const replay = createReplayableInput(input, maxReplayMessages);
      let avoid: Subchannel | undefined;
      for (let attempt = 0; ; attempt++) {
        const sc = await pick(deadline, signal, avoid);
        const startedAt = sc.begin();
        let response: StreamResponse<I, O>;
        try {
          response = await transportOf(sc).stream(
            method,
            signal,
            remaining(deadline),
            header,
            replay.iterable(),
            contextValues,
          );
        } catch (e) {
          const notSent = isCallNotSent(e);
          sc.end(startedAt, { ok: false, pending: true, sample: !notSent });
          if (!notSent) throw e;
          if (attempt >= maxNotSentRetries || !replay.canReplay() || pool.isClosed() || signal?.aborted) {
            throw notSentError(e, sc);
          }
          avoid = sc;
          continue;
        }
        replay.commit();
        return { ...response, message: track(response.message, sc, startedAt) };
      }
    },

    snapshot(): ChannelSnapshot {
      return {
        target: target.raw,
        balancer: balancer.name,
        closed: pool.isClosed(),
        ...(pool.lastError() ? { lastError: pool.lastError() } : {}),
        endpoints: pool.subchannels().map((sc) => ({
          address: sc.key,
          state: sc.state(),
          draining: sc.draining,
          inFlight: sc.load.inFlight,
          pending: sc.load.pending,
          latencyMs: sc.load.latencyMs(),
          calls: sc.stats.calls,
          failures: sc.stats.failures,
          weight: sc.endpoint.weight ?? 1,
          ...(sc.endpoint.zone ? { zone: sc.endpoint.zone } : {}),
        })),
      };
    },

    close: () => pool.close(closeGraceMs),
    [Symbol.asyncDispose]: () => pool.close(closeGraceMs),
  };
  return channel;
}

/**
 * Wraps the response messages of a stream to record, on the endpoint, the
 * first message (latency sample, no longer pending) and the end of the call.
 */
async function* track<T>(messages: AsyncIterable<T>, sc: Subchannel, startedAt: number): AsyncIterable<T> {
  let first = true;
  let ok = false;
  try {
    for await (const message of messages) {
      if (first) {
        first = false;
        sc.firstResponse(startedAt);
      }
      yield message;
    }
    ok = true;
  } finally {
    sc.end(startedAt, { ok, pending: first, sample: first && ok });
  }
}

function validateOrigin(origin: string, options: ChannelOptions) {
  try {
    new URL(origin);
  } catch {
    throw new TypeError(`createChannel: authority ${JSON.stringify(options.authority)} is not a valid host[:port]`);
  }
}
