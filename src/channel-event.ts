import type { PoolEvent } from "@meshlite/pool";

/**
 * What a channel reports through `onEvent`: the pool's endpoint, ejection,
 * health and resolver events, and the channel's retries. Wire it to logs,
 * metrics or traces. Handlers run synchronously on the call path; keep them cheap.
 */
export type ChannelEvent =
  | PoolEvent
  | {
      type: "retry";
      /** `package.Service/Method` */
      method: string;
      /** The attempt that failed, 1-based. */
      attempt: number;
      /** The status code of the failed attempt. */
      code: number;
      address: string;
      /** Why: a policy retry, a call that was never sent, or a hedged copy. */
      kind: "policy" | "not-sent" | "hedge";
      delayMs: number;
    }
  | {
      /**
       * A service config from DNS (`dnsServiceConfig`): `applied` (it runs
       * now), `removed` (the record is gone: the channel's own serviceConfig
       * runs again) or `rejected` (invalid: the last good one keeps running).
       */
      type: "service-config";
      status: "applied" | "removed" | "rejected";
      /** Where it came from, e.g. `DNS TXT _grpc_config.orders.test`. */
      source: string;
      /** Why it was rejected, naming the JSON path. */
      error?: string;
    };

/** Receives channel events. */
export type ChannelEventHandler = (event: ChannelEvent) => void;
