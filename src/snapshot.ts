import type { PoolSnapshot } from "@meshlite/pool";

/** What `channel.snapshot()` returns: the pool's snapshot, and whether the channel is closed. */
export interface ChannelSnapshot extends PoolSnapshot {
  closed: boolean;
}
