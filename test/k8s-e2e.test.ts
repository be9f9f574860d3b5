import { type KubernetesTarget, parseTarget } from "@meshlite/core";
import { createKubernetesResolver } from "@meshlite/resolver-k8s";
import { describe, expect, it } from "vitest";
import { createRecorder } from "./support/resolver-recorder.js";

// Runs only against a real cluster: MESHLITE_E2E_KUBECONFIG=/path/to/kubeconfig pnpm test test/k8s-e2e.test.ts
// The target defaults to the API server's own Service (every cluster has it, its port is named "https");
// MESHLITE_E2E_K8S_TARGET picks another. The identity needs get, list, watch on endpointslices there.
const kubeconfigPath = process.env.MESHLITE_E2E_KUBECONFIG;
const target = process.env.MESHLITE_E2E_K8S_TARGET ?? "k8s:///kubernetes.default:https";
const skipReason = "set MESHLITE_E2E_KUBECONFIG to a kubeconfig of a real cluster to run it";

describe.skipIf(!kubeconfigPath)(`k8s resolver against a real cluster (skipped unless ${skipReason})`, () => {
  it(`resolves ${target} and keeps watching`, async () => {
    const recorder = createRecorder();
    const resolver = createKubernetesResolver(parseTarget(target) as KubernetesTarget, {
      logger: recorder.logger,
      options: { kubeconfigPath: kubeconfigPath as string },
    });
    try {
      resolver.start(recorder.listener);
      await recorder.until(() => recorder.sets.length > 0 || recorder.errors.length > 0, "a set or an error", 30_000);
      expect(recorder.errors.map((e) => e.message)).toEqual([]);
      const endpoints = recorder.sets.at(-1)?.endpoints ?? [];
      expect(endpoints.length).toBeGreaterThan(0);
      for (const endpoint of endpoints) {
        expect(endpoint.port).toBeGreaterThan(0);
      }
      // The watch stays up: no failure is reported in the next seconds.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(recorder.errors).toEqual([]);
    } finally {
      resolver.close();
    }
  });
});
