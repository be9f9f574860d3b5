import { existsSync, readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { homedir } from "node:os";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";

const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

/** For tests only: a directory prefixed to the service account paths (as loadFromCluster's pathPrefix). */
export interface KubeApiInternals {
  serviceAccountRoot?: string;
}

/** Where the resolver gets the API server address and credentials. */
export type CredentialSource =
  | { kind: "kubeconfig"; path: string; why: string }
  | { kind: "in-cluster"; root: string }
  | { kind: "default-kubeconfig"; why: string };

/**
 * Picks the credential source: an explicit kubeconfig path, else `KUBECONFIG`,
 * else the in-cluster service account, else `~/.kube/config`. An explicit
 * setting wins over the ambient service account so that a process in a pod
 * can be pointed elsewhere. Throws when there is none.
 */
export function findCredentialSource(kubeconfigPath: string | undefined, root = ""): CredentialSource {
  if (kubeconfigPath !== undefined) {
    if (!existsSync(kubeconfigPath)) {
      throw new Error(`k8s resolver: the kubeconfig file "${kubeconfigPath}" (option kubeconfigPath) does not exist`);
    }
    return { kind: "kubeconfig", path: kubeconfigPath, why: "option kubeconfigPath" };
  }
  const env = process.env.KUBECONFIG;
  if (env !== undefined && env !== "") {
    return { kind: "default-kubeconfig", why: `KUBECONFIG=${env}` };
  }
  if (process.env.KUBERNETES_SERVICE_HOST && existsSync(join(root + serviceAccountDir, "token"))) {
    return { kind: "in-cluster", root };
  }
  const home = join(homedir(), ".kube", "config");
  if (existsSync(home)) {
    return { kind: "default-kubeconfig", why: home };
  }
  throw new Error(
    "k8s resolver: no Kubernetes credentials found: not in a cluster (KUBERNETES_SERVICE_HOST unset or no " +
      `service account token in ${serviceAccountDir}), KUBECONFIG unset, and no ${home}; ` +
      "run in a pod with a service account, set KUBECONFIG, or pass resolverOptions.kubeconfigPath",
  );
}

/** An error response of the API server. */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(
    readonly status: number,
    /** The Status object's message, or the body's start. */
    readonly detail: string,
    readonly reason?: string,
  ) {
    super(`HTTP ${status}${reason ? ` ${reason}` : ""}: ${detail}`);
  }
}

/** Requests to one API server with the credentials of a kubeconfig (re-applied per request, so rotated tokens are picked up). */
export interface KubeApi {
  /** The API server URL. */
  readonly server: string;
  /** The namespace to use when the target names none. */
  readonly defaultNamespace: string;
  /** Sends a GET; resolves once the response headers arrive (or rejects after `timeoutMs`). */
  get(path: string, signal: AbortSignal, timeoutMs: number): Promise<http.IncomingMessage>;
}

/** Loads the kubeconfig of a credential source with @kubernetes/client-node (imported lazily: it is large). */
export async function loadKubeApi(source: CredentialSource, context: string | undefined): Promise<KubeApi> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const config: KubeConfig = new KubeConfig();
  switch (source.kind) {
    case "kubeconfig":
      config.loadFromFile(source.path);
      break;
    case "in-cluster":
      config.loadFromCluster(source.root);
      break;
    case "default-kubeconfig":
      config.loadFromDefault();
      break;
  }
  if (context !== undefined) {
    if (config.getContextObject(context) === null) {
      const known = config.getContexts().map((c) => c.name);
      throw new Error(
        `k8s resolver: kubeconfig context "${context}" (option kubeconfigContext) does not exist; contexts: ${known.join(", ") || "none"}`,
      );
    }
    config.setCurrentContext(context);
  }
  const cluster = config.getCurrentCluster();
  if (cluster === null) {
    throw new Error(`k8s resolver: the kubeconfig (${describeSource(source)}) has no current cluster`);
  }
  const server = cluster.server.replace(/\/+$/, "");
  let defaultNamespace = config.getContextObject(config.getCurrentContext())?.namespace?.trim();
  if (!defaultNamespace && source.kind === "in-cluster") {
    defaultNamespace = readFileSync(join(source.root + serviceAccountDir, "namespace"), "utf8").trim();
  }
  return {
    server,
    defaultNamespace: defaultNamespace || "default",
    async get(path, signal, timeoutMs) {
      const options: https.RequestOptions = { headers: {} };
      await config.applyToHTTPSOptions(options);
      const url = new URL(server + path);
      const send = url.protocol === "http:" ? http.request : https.request;
      return new Promise<http.IncomingMessage>((resolve, reject) => {
        const request = send(url, {
          ...options,
          method: "GET",
          headers: { ...options.headers, Accept: "application/json" },
          signal,
        });
        const timer = setTimeout(() => {
          request.destroy(new Error(`no response from the API server ${server} within ${timeoutMs} ms`));
        }, timeoutMs);
        request.once("response", (response) => {
          clearTimeout(timer);
          resolve(response);
        });
        request.once("error", (error) => {
          clearTimeout(timer);
          reject(error);
        });
        request.end();
      });
    },
  };
}

export function describeSource(source: CredentialSource): string {
  switch (source.kind) {
    case "kubeconfig":
    case "default-kubeconfig":
      return `kubeconfig from ${source.why}`;
    case "in-cluster":
      return "in-cluster service account";
  }
}

/** Reads a whole response body as text, with a deadline. */
export function readBody(response: http.IncomingMessage, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      response.destroy(new Error(`the API server's response did not complete within ${timeoutMs} ms`));
    }, timeoutMs);
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.once("end", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    response.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    response.once("close", () => {
      clearTimeout(timer);
      if (!response.complete) {
        reject(new Error("the API server closed the connection before the response was complete"));
      }
    });
  });
}

/** Turns a non-2xx response into a KubeApiError carrying the Status message. */
export async function errorFromResponse(response: http.IncomingMessage, timeoutMs: number): Promise<KubeApiError> {
  const status = response.statusCode ?? 0;
  let body = "";
  try {
    body = await readBody(response, timeoutMs);
  } catch {
    // The status code says enough.
  }
  try {
    const parsed = JSON.parse(body) as { message?: string; reason?: string };
    if (parsed && typeof parsed.message === "string") {
      return new KubeApiError(status, parsed.message, parsed.reason);
    }
  } catch {
    // Not a Status object.
  }
  return new KubeApiError(status, body.slice(0, 200) || (response.statusMessage ?? ""));
}
