import { registerResolver } from "@meshlite/core";
import { createKubernetesResolver } from "./kubernetes-resolver.js";

// Importing this package makes createChannel accept k8s:/// and kubernetes:/// targets.
registerResolver("k8s", createKubernetesResolver);

export type { EndpointSlice } from "./endpoint-slices.js";
export { mergeSlices } from "./endpoint-slices.js";
export { createKubernetesResolver } from "./kubernetes-resolver.js";
export type { KubernetesResolverOptions } from "./kubernetes-resolver-options.js";
