import type { Transport } from "@connectrpc/connect";
import type { Subchannel } from "./subchannel.js";

/** What the call path needs from the channel: picking an endpoint and its transport. */
export interface CallContext {
  /** The target as given, for messages. */
  readonly target: string;
  /**
   * Picks an endpoint, waiting for one to be ready until the deadline
   * (performance.now() clock). Throws ConnectError UNAVAILABLE or CANCELED.
   */
  pick(deadline: number | undefined, signal: AbortSignal | undefined, avoid?: Subchannel): Promise<Subchannel>;
  /** The Connect transport pinned to an endpoint's connection. */
  transportOf(subchannel: Subchannel): Transport;
  /** Whether the channel is closing (no retries then). */
  isClosing(): boolean;
}
