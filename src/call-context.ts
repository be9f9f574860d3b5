import type { Transport } from "@connectrpc/connect";
import type { Logger, PickCall } from "@meshlite/core";
import type { Subchannel } from "@meshlite/pool";
import type { ChannelEventHandler } from "./channel-event.js";
import type { RetryThrottle } from "./retry-policy.js";

/** What the call path needs from the channel. */
export interface CallContext {
  /** The target as given, for messages. */
  readonly target: string;
  /** Picks a ready endpoint now for `call`, preferring one other than `avoid`; undefined when none is ready. */
  tryPick(avoid: Subchannel | undefined, call: PickCall): Subchannel | undefined;
  /**
   * Waits for a ready endpoint until the deadline (performance.now() clock;
   * `waitForReadyMs` without one); `failFast`: not while every endpoint is failing. Throws ConnectError DEADLINE_EXCEEDED
   * (the call's deadline passed), UNAVAILABLE or CANCELED.
   */
  waitForPick(
    deadline: number | undefined,
    signal: AbortSignal | undefined,
    avoid: Subchannel | undefined,
    call: PickCall,
    failFast?: boolean,
  ): Promise<Subchannel>;
  /** The Connect transport pinned to an endpoint's connection. */
  transportOf(subchannel: Subchannel): Transport;
  /** Whether the channel is closing (no retries then). */
  isClosing(): boolean;
  /** Retry throttling shared by every call of the channel (replaced when a new service config arrives). */
  readonly throttle: RetryThrottle;
  readonly emit: ChannelEventHandler;
  /** Where warnings about endpoints go (a load report that does not parse). */
  readonly logger: Logger;
}
