/**
 * Options of the Kubernetes resolver, passed as the channel's
 * `resolverOptions`.
 */
export interface KubernetesResolverOptions {
  /**
   * A kubeconfig file to use. Default: none, that is `KUBECONFIG`, else the
   * in-cluster service account, else `~/.kube/config`.
   */
  kubeconfigPath?: string;
  /** The kubeconfig context to use. Default: the kubeconfig's current-context. */
  kubeconfigContext?: string;
  /**
   * Restart a watch that has delivered nothing, not even a bookmark, for this
   * long (a half-dead connection). Default 90000 ms: the API server sends a
   * bookmark about once a minute on a quiet watch, so a limit of 60 s would
   * restart healthy watches of quiet services every minute.
   */
  watchIdleTimeoutMs?: number;
  /** First delay before retrying an unreachable or failing API server; grows x1.6 with jitter. Default 1000 ms. */
  reconnectInitialMs?: number;
  /** Longest delay between retries. Default 30000 ms. */
  reconnectMaxMs?: number;
  /** Deadline of a list request, and of a watch request's response headers. Default 20000 ms. */
  requestTimeoutMs?: number;
}

export const defaultKubernetesResolverOptions = {
  watchIdleTimeoutMs: 90_000,
  reconnectInitialMs: 1000,
  reconnectMaxMs: 30_000,
  requestTimeoutMs: 20_000,
} as const;

/** Options after validation, with defaults applied. */
export type ResolvedKubernetesResolverOptions = Required<
  Pick<KubernetesResolverOptions, keyof typeof defaultKubernetesResolverOptions>
> &
  Pick<KubernetesResolverOptions, "kubeconfigPath" | "kubeconfigContext">;

const durations = Object.keys(defaultKubernetesResolverOptions) as (keyof typeof defaultKubernetesResolverOptions)[];
const strings = ["kubeconfigPath", "kubeconfigContext"] as const;
const accepted = [...strings, ...durations];

/** Validates `resolverOptions` for a k8s target; throws an error naming the bad option and what is accepted. */
export function parseKubernetesResolverOptions(
  options: Readonly<Record<string, unknown>> | undefined,
): ResolvedKubernetesResolverOptions {
  const input = options ?? {};
  const resolved: ResolvedKubernetesResolverOptions = { ...defaultKubernetesResolverOptions };
  for (const [name, value] of Object.entries(input)) {
    if (value === undefined) {
      continue;
    }
    if ((strings as readonly string[]).includes(name)) {
      if (typeof value !== "string" || value === "") {
        throw new Error(`k8s resolver option ${name} must be a non-empty string, got ${JSON.stringify(value)}`);
      }
      resolved[name as (typeof strings)[number]] = value;
    } else if ((durations as readonly string[]).includes(name)) {
      if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
        throw new Error(
          `k8s resolver option ${name} must be a positive number of milliseconds, got ${JSON.stringify(value)}`,
        );
      }
      resolved[name as (typeof durations)[number]] = value;
    } else {
      throw new Error(`unknown k8s resolver option "${name}"; accepted options: ${accepted.join(", ")}`);
    }
  }
  if (resolved.reconnectMaxMs < resolved.reconnectInitialMs) {
    throw new Error(
      `k8s resolver option reconnectMaxMs (${resolved.reconnectMaxMs}) must not be below reconnectInitialMs (${resolved.reconnectInitialMs})`,
    );
  }
  return resolved;
}

// `resolverOptions` of createChannel and the proxy's routes, typed per scheme.
declare module "@meshlite/core" {
  interface ResolverOptionsByScheme {
    k8s: KubernetesResolverOptions;
  }
}
