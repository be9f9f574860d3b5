import { type CredentialSource, describeSource, KubeApiError } from "./kube-api.js";

/** What a failure message needs besides the error. */
export interface FailureContext {
  /** The API server URL; undefined while the configuration is not loaded. */
  server: string | undefined;
  source: CredentialSource;
  namespace: string;
  /** How many endpoints stay in force meanwhile. */
  kept: number;
}

/**
 * Explains a failed list or watch for a user: what failed and what to do.
 * Returns a kind too: failures of the same kind in a row are one incident,
 * logged once.
 */
export function describeFailure(error: unknown, context: FailureContext): [kind: string, message: string] {
  const { source, namespace } = context;
  const server = context.server ?? "(not loaded)";
  const keeping = `keeping the last ${context.kept} endpoints and retrying`;
  if (error instanceof KubeApiError) {
    switch (error.status) {
      case 401:
        return [
          "401",
          `the API server ${server} rejected the credentials (${describeSource(source)}): ${error.message}. ` +
            `Check that the token or client certificate is valid and not expired; once authenticated, the identity ` +
            `needs the verbs get, list and watch on endpointslices.discovery.k8s.io in namespace "${namespace}"; ${keeping}`,
        ];
      case 403:
        return [
          "403",
          `forbidden to read EndpointSlices in namespace "${namespace}" (${error.message}). The client's identity ` +
            `needs the verbs get, list and watch on endpointslices.discovery.k8s.io in namespace "${namespace}": a ` +
            `Role with apiGroups ["discovery.k8s.io"], resources ["endpointslices"], verbs ["get", "list", "watch"], ` +
            `bound by a RoleBinding to its ServiceAccount; ${keeping}`,
        ];
      case 404:
        return [
          "404",
          `the API server ${server} does not serve discovery.k8s.io/v1 EndpointSlices (Kubernetes 1.21 or later is ` +
            `needed): ${error.message}; ${keeping}`,
        ];
      default:
        return [`http-${error.status}`, `the API server ${server} failed: ${error.message}; ${keeping}`];
    }
  }
  const message = error instanceof Error ? error.message : String(error);
  if (context.server === undefined) {
    return ["config", `cannot load the Kubernetes configuration (${describeSource(source)}): ${message}`];
  }
  if (error instanceof TypeError) {
    // Not a network failure (requests go through node:https): an EndpointSlice too malformed to read.
    return ["malformed", `cannot read the EndpointSlices from ${server} (${message}); ${keeping}`];
  }
  return ["unreachable", `the Kubernetes API server ${server} is unreachable (${message}); ${keeping}`];
}
