/**
 * Watches the calls of a channel or the proxy and each of their attempts, for
 * metrics and tracing (`@meshlite/opentelemetry` builds one). Its methods run
 * on the call path: keep them cheap, and do not throw (an error thrown
 * fails the call). Without an observer nothing of this is built or called.
 */
export interface CallObserver {
  /** A call starts, before an endpoint is picked. What it returns watches the call. */
  callStarted(call: ObservedCall): CallWatcher;
}

/** The call an observer is told of. */
export interface ObservedCall {
  /** `package.Service/Method`. */
  readonly method: string;
  /**
   * Whether the method comes from a descriptor the caller knows (generated
   * code): a channel's calls always do; the proxy forwards any path, so its
   * calls do not (metrics record such methods as `other`, bounding their names).
   */
  readonly knownMethod: boolean;
  /** The target the call is balanced over (the channel's, or the proxy route's). */
  readonly target: string;
  /** "client": a channel's call. "proxy": a call the proxy received and forwards (its attempts go upstream). */
  readonly side: "client" | "proxy";
  /** The request headers as received (proxy calls only), for a trace context to continue. */
  readonly incomingHeader?: HeaderReader;
}

/** Reads a request header by lower-case name. */
export interface HeaderReader {
  get(name: string): string | null | undefined;
}

/** Sets a request header of an attempt. */
export interface HeaderWriter {
  set(name: string, value: string): void;
}

/** Watches one call. */
export interface CallWatcher {
  /**
   * An attempt is sent to an endpoint: the first, a resend of a call that was
   * never sent, a policy retry or a hedged copy. `header` is that attempt's
   * request headers: a `traceparent` set there goes to the server.
   */
  attemptStarted(attempt: ObservedAttempt): AttemptWatcher;
  /** The call ended with this status code (0 OK); a streaming call when its response ends. */
  ended(code: number): void;
}

/** An attempt an observer is told of. */
export interface ObservedAttempt {
  /** The endpoint's `host:port`. */
  readonly address: string;
  /** 0 for the first attempt of the call, then 1, 2... */
  readonly index: number;
  readonly header: HeaderWriter;
}

/** Watches one attempt. */
export interface AttemptWatcher {
  /**
   * A request message of `bytes` (its protobuf encoding, before compression)
   * was sent. Optional: without it sizes are not measured. Channels only.
   */
  messageSent?(bytes: number): void;
  /** A response message of `bytes` was received. Channels only. */
  messageReceived?(bytes: number): void;
  /** The attempt ended with this status code (0 OK). */
  ended(code: number): void;
}
