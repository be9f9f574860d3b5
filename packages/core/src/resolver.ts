import type { Endpoint } from "./endpoint.js";
import type { Logger } from "./logger.js";
import type { Target } from "./target.js";

/** What a resolver reports to. */
export interface ResolverListener {
  /** The complete current set of endpoints. Called only when the set changed. */
  onEndpoints(endpoints: readonly Endpoint[]): void;
  /**
   * Resolution failed. The last good set stays in force; the resolver keeps
   * retrying on its own.
   */
  onError(error: Error): void;
  /**
   * The service config the resolver found (the DNS resolver's `grpc_config=`
   * TXT record, gRFC A2, when asked for with `serviceConfig: true`): the
   * record's text, or undefined when there is none (any more). Called only
   * when it changed. Optional: listeners that do not take service configs
   * leave it out.
   */
  onServiceConfig?(text: string | undefined): void;
}

/**
 * Discovery: turns a target into a set of endpoints and keeps it current.
 * A resolver instance serves one channel.
 */
export interface Resolver {
  /** Starts resolving; reports to `listener` until closed. */
  start(listener: ResolverListener): void;
  /**
   * Asks for an early re-resolution, because a connection was lost or a
   * server sent GOAWAY. Resolvers rate-limit this; watch-based ones may ignore it.
   */
  refresh(): void;
  /** Stops resolving and releases timers, sockets and watches. */
  close(): void;
  /**
   * The zone of the node named `nodeName` (where the client runs), as the
   * resolver's source knows it: the Kubernetes resolver reads the Node's
   * `topology.kubernetes.io/zone` label. Resolves to undefined when unknown
   * (and says why once). Optional: the locality policy asks it only when
   * neither options nor the environment name the client's zone.
   */
  zoneOfNode?(nodeName: string): Promise<string | undefined>;
}

/** What a resolver factory gets besides the target. */
export interface ResolverContext {
  /** Where to report what is not thrown. */
  readonly logger: Logger;
  /** Resolver-specific options from the channel's `resolverOptions`. */
  readonly options: Readonly<Record<string, unknown>>;
}

/** Creates a resolver for a parsed target. */
export type ResolverFactory<T extends Target = Target> = (target: T, context: ResolverContext) => Resolver;

/**
 * The `resolverOptions` each scheme takes, by scheme. Resolver packages add
 * their scheme (declaration merging), so `resolverOptions` is typed for every
 * resolver installed: @meshlite/resolvers adds `dns` and `static`,
 * @meshlite/resolver-k8s adds `k8s`.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by resolver packages through declaration merging
export interface ResolverOptionsByScheme {}

/** Options of any installed resolver (see ResolverOptionsByScheme). */
export type ResolverOptions = ResolverOptionsByScheme[keyof ResolverOptionsByScheme];
