/** Where the client runs, and where each part of that came from (for snapshots and log lines). */
export interface ClientLocality {
  /** The client's zone; undefined when unknown. */
  zone?: string;
  /** The client's node name; undefined when unknown. */
  node?: string;
  /** Where `zone` came from: "options", "env MESHLITE_ZONE", "node label". */
  zoneSource?: string;
  /** Where `node` came from: "options", "env NODE_NAME". */
  nodeSource?: string;
}

/** The environment variable with the client's node name (downward API `spec.nodeName`). */
export const nodeNameEnv = "NODE_NAME";
/** The environment variable with the client's zone (downward API, the pod's `topology.kubernetes.io/zone` label). */
export const zoneEnv = "MESHLITE_ZONE";

/**
 * The client's locality from options, else from the environment the downward
 * API fills in. The third source, the zone label of the client's node, needs
 * the Kubernetes API and is looked up later (see Resolver.zoneOfNode).
 */
export function clientLocalityOf(
  options: { zone?: string | undefined; node?: string | undefined },
  env: Readonly<Record<string, string | undefined>> = process.env,
): ClientLocality {
  const locality: ClientLocality = {};
  const envZone = env[zoneEnv]?.trim();
  const envNode = env[nodeNameEnv]?.trim();
  if (options.zone) {
    locality.zone = options.zone;
    locality.zoneSource = "options";
  } else if (envZone) {
    locality.zone = envZone;
    locality.zoneSource = `env ${zoneEnv}`;
  }
  if (options.node) {
    locality.node = options.node;
    locality.nodeSource = "options";
  } else if (envNode) {
    locality.node = envNode;
    locality.nodeSource = `env ${nodeNameEnv}`;
  }
  return locality;
}
