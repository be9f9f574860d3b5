import type { PoolSnapshot } from "@meshlite/pool";

/** What `channel.snapshot()` returns: the pool's snapshot, and whether the channel is closed. */
export interface ChannelSnapshot extends PoolSnapshot {
  closed: boolean;
  /** The service config, with `serviceConfig` or `dnsServiceConfig` set. */
  serviceConfig?: ServiceConfigSnapshot;
}

/** Which service config a channel runs with, and what became of the ones DNS sent. */
export interface ServiceConfigSnapshot {
  /** "options": the channel's serviceConfig; "dns": one from DNS; "none": neither. */
  source: "options" | "dns" | "none";
  /** DNS service configs applied (or removed, back to the channel's own). */
  updates: number;
  /** DNS service configs rejected as invalid (the last good one kept running). */
  rejected: number;
  /** Why the last one was rejected. */
  lastError?: string;
}
