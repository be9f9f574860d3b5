import { errorFromResponse, type KubeApi, readBody } from "./kube-api.js";

/** The label Kubernetes puts on a Node (and, where the cluster copies it, on Pods) with its zone. */
export const zoneLabel = "topology.kubernetes.io/zone";

/** One object read: its value, or why there is none. */
export type TopologyRead<T> =
  | { kind: "found"; value: T }
  | { kind: "not-found" }
  | { kind: "forbidden"; message: string };

async function getObject(
  kube: KubeApi,
  path: string,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<TopologyRead<Record<string, unknown>>> {
  const response = await kube.get(path, signal, timeoutMs);
  if (response.statusCode === 200) {
    return { kind: "found", value: JSON.parse(await readBody(response, timeoutMs)) as Record<string, unknown> };
  }
  const error = await errorFromResponse(response, timeoutMs);
  if (error.status === 404) return { kind: "not-found" };
  if (error.status === 403) return { kind: "forbidden", message: error.detail };
  throw error;
}

/** The Service's `spec.trafficDistribution` (undefined when it sets none). Needs `get services`. */
export async function readTrafficDistribution(
  kube: KubeApi,
  namespace: string,
  service: string,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<TopologyRead<string | undefined>> {
  const read = await getObject(
    kube,
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/services/${encodeURIComponent(service)}`,
    signal,
    timeoutMs,
  );
  if (read.kind !== "found") return read;
  const spec = read.value.spec as { trafficDistribution?: unknown } | undefined;
  const value = spec?.trafficDistribution;
  return { kind: "found", value: typeof value === "string" && value !== "" ? value : undefined };
}

/** The zone label of a Node (undefined when it has none). Needs `get nodes` (cluster-scoped: a ClusterRole). */
export async function readNodeZone(
  kube: KubeApi,
  node: string,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<TopologyRead<string | undefined>> {
  const read = await getObject(kube, `/api/v1/nodes/${encodeURIComponent(node)}`, signal, timeoutMs);
  if (read.kind !== "found") return read;
  const labels = (read.value.metadata as { labels?: Record<string, unknown> } | undefined)?.labels;
  const zone = labels?.[zoneLabel];
  return { kind: "found", value: typeof zone === "string" && zone !== "" ? zone : undefined };
}
