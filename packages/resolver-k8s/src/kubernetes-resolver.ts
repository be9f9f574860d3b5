import {
  type Endpoint,
  type KubernetesTarget,
  type Resolver,
  type ResolverContext,
  type ResolverListener,
  sameEndpoints,
} from "@meshlite/core";
import pRetry from "p-retry";
import { type EndpointSlice, mergeSlices } from "./endpoint-slices.js";
import { describeFailure } from "./failure-message.js";
import {
  type CredentialSource,
  errorFromResponse,
  findCredentialSource,
  type KubeApi,
  KubeApiError,
  type KubeApiInternals,
  loadKubeApi,
  readBody,
} from "./kube-api.js";
import { parseKubernetesResolverOptions } from "./kubernetes-resolver-options.js";
import { readNodeZone, readTrafficDistribution, zoneLabel } from "./topology-reads.js";
import { readWatchStream, type WatchEvent, type WatchOutcome } from "./watch-stream.js";

/** How often, at most, the Service is read again for its trafficDistribution (before a watch request). */
const serviceRefreshMs = 60_000;

/**
 * Creates a resolver for `k8s:///service.namespace:port` targets: it lists the
 * service's EndpointSlices, then watches them from the list's resourceVersion
 * (with bookmarks), and reports the merged set of ready endpoints, with
 * terminating-but-serving ones marked draining. It relists on 410 Gone,
 * restarts a watch that goes silent, and keeps the last good set while the
 * API server is unreachable, retrying with backoff.
 *
 * Throws at once on bad `resolverOptions` or when no credentials exist.
 */
export function createKubernetesResolver(
  target: KubernetesTarget,
  context: ResolverContext,
  internals: KubeApiInternals = {},
): Resolver {
  const options = parseKubernetesResolverOptions(context.options);
  const source: CredentialSource = findCredentialSource(options.kubeconfigPath, internals.serviceAccountRoot);
  const { logger } = context;
  const stop = new AbortController();
  const slices = new Map<string, EndpointSlice>();
  const portProblems = new Set<string>();
  let listener: ResolverListener | undefined;
  let reported: readonly Endpoint[] | undefined;
  let resourceVersion: string | undefined;
  let api: KubeApi | undefined;
  let namespace = target.namespace;
  // The kind of failure last reported; each incident is logged once and
  // cleared when the API server answers again.
  let incident: string | undefined;
  // Watches restarted for silence since the last event of any kind.
  let silentRestarts = 0;
  // The Service's spec.trafficDistribution, read before listing and again now and then.
  let trafficDistribution: string | undefined;
  let serviceReadAt = Number.NEGATIVE_INFINITY;
  let serviceForbidden = false;

  const prefix = () => `k8s resolver (${target.raw})`;
  const collectionPath = () =>
    `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace ?? "default")}/endpointslices` +
    `?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${target.service}`)}`;

  function publish(): void {
    if (stop.signal.aborted || listener === undefined) {
      return;
    }
    const next = mergeSlices(
      slices.values(),
      target.port,
      (slice, problem) => {
        const key = `${slice.metadata.name}\n${problem}`;
        if (!portProblems.has(key)) {
          portProblems.add(key);
          logger.warn(`${prefix()}: EndpointSlice ${slice.metadata.name} is skipped: ${problem}`);
        }
      },
      trafficDistribution,
    );
    if (reported !== undefined && sameEndpoints(reported, next)) {
      return;
    }
    reported = next;
    logger.debug(`${prefix()}: ${next.length} endpoints`, { endpoints: next });
    try {
      listener.onEndpoints(next);
    } catch (error) {
      logger.error(`${prefix()}: the endpoint listener threw`, { error });
    }
  }

  function recovered(): void {
    if (incident !== undefined) {
      logger.info(`${prefix()}: the API server answers again; watching EndpointSlices`);
      incident = undefined;
    }
  }

  function fail(error: unknown): void {
    if (stop.signal.aborted) {
      return;
    }
    const [kind, message] = describeFailure(error, {
      server: api?.server,
      source,
      namespace: namespace ?? "default",
      kept: reported?.length ?? 0,
    });
    if (kind === incident) {
      logger.debug(`${prefix()}: still failing: ${message}`);
      return;
    }
    incident = kind;
    logger.warn(`${prefix()}: ${message}`);
    try {
      listener?.onError(new Error(`${prefix()}: ${message}`));
    } catch (listenerError) {
      logger.error(`${prefix()}: the error listener threw`, { error: listenerError });
    }
  }

  async function list(kube: KubeApi): Promise<void> {
    const response = await kube.get(collectionPath(), stop.signal, options.requestTimeoutMs);
    if (response.statusCode !== 200) {
      throw await errorFromResponse(response, options.requestTimeoutMs);
    }
    const body = await readBody(response, options.requestTimeoutMs);
    const parsed = JSON.parse(body) as { metadata?: { resourceVersion?: unknown }; items?: unknown };
    const version = parsed.metadata?.resourceVersion;
    if (typeof version !== "string" || !Array.isArray(parsed.items)) {
      throw new Error(`unexpected EndpointSlice list from ${kube.server}: ${body.slice(0, 200)}`);
    }
    slices.clear();
    for (const item of parsed.items as EndpointSlice[]) {
      if (typeof item?.metadata?.name === "string") {
        slices.set(item.metadata.name, item);
      }
    }
    resourceVersion = version;
    recovered();
    publish();
  }

  function applyEvent(event: WatchEvent): WatchOutcome | undefined {
    silentRestarts = 0;
    const object = event.object;
    const version = object?.metadata?.resourceVersion;
    switch (event.type) {
      case "ADDED":
      case "MODIFIED":
      case "DELETED": {
        const name = object?.metadata?.name;
        if (typeof name !== "string") {
          logger.warn(`${prefix()}: ignoring a ${event.type} event without metadata.name`);
          break;
        }
        if (event.type === "DELETED") {
          slices.delete(name);
        } else {
          slices.set(name, object as EndpointSlice);
        }
        if (typeof version === "string") {
          resourceVersion = version;
        }
        publish();
        break;
      }
      case "BOOKMARK":
        if (typeof version === "string") {
          resourceVersion = version;
        }
        break;
      case "ERROR": {
        const code = typeof object?.code === "number" ? object.code : 500;
        if (code === 410) {
          return { kind: "expired" };
        }
        const message = typeof object?.message === "string" ? object.message : "watch error";
        return {
          kind: "error",
          error: new KubeApiError(code, message, typeof object?.reason === "string" ? object.reason : undefined),
        };
      }
      default:
        logger.debug(`${prefix()}: ignoring a watch event of type ${String(event.type)}`);
    }
    return undefined;
  }

  async function watch(kube: KubeApi, from: string): Promise<void> {
    // Rotate watches like client-go does, so that no connection lives forever.
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
    const path = `${collectionPath()}&watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(from)}&timeoutSeconds=${timeoutSeconds}`;
    const response = await kube.get(path, stop.signal, options.requestTimeoutMs);
    let outcome: WatchOutcome;
    if (response.statusCode === 410) {
      response.resume();
      outcome = { kind: "expired" };
    } else if (response.statusCode !== 200) {
      throw await errorFromResponse(response, options.requestTimeoutMs);
    } else {
      recovered();
      outcome = await readWatchStream(response, options.watchIdleTimeoutMs, applyEvent);
    }
    if (stop.signal.aborted) {
      return;
    }
    switch (outcome.kind) {
      case "expired":
        logger.info(`${prefix()}: resourceVersion ${from} is too old (410 Gone); listing EndpointSlices again`);
        resourceVersion = undefined;
        return;
      case "idle": {
        const message =
          `${prefix()}: the watch delivered nothing, not even a bookmark, for ${options.watchIdleTimeoutMs} ms; ` +
          `restarting it from resourceVersion ${resourceVersion}`;
        // Once per silence: a server that sends no bookmarks would otherwise warn at every quiet period.
        if (silentRestarts++ === 0) {
          logger.warn(message);
        } else {
          logger.debug(message);
        }
        return;
      }
      case "ended":
        logger.debug(`${prefix()}: the API server ended the watch; resuming from resourceVersion ${resourceVersion}`);
        break;
      case "broken":
        logger.info(
          `${prefix()}: the watch connection was lost (${outcome.error.message}); resuming from resourceVersion ${resourceVersion}`,
        );
        break;
      case "error":
        if (!(outcome.error instanceof KubeApiError)) {
          // An event could not be read or applied: the local state may be partial, so list afresh.
          resourceVersion = undefined;
        }
        throw outcome.error;
    }
    if (outcome.delivered === 0) {
      // Ended or lost before delivering anything: pause rather than spin on a server that ends every watch at once.
      await pause(options.reconnectInitialMs);
    }
  }

  async function kubeApi(): Promise<KubeApi> {
    api ??= await loadKubeApi(source, options.kubeconfigContext);
    return api;
  }

  /**
   * Reads the Service's `spec.trafficDistribution` (RBAC `get services`),
   * which turns into topology hints for endpoints whose slice has none.
   * Forbidden: said once, and hints only from then on. Other failures keep
   * the last value; they never stop the EndpointSlice watch.
   */
  async function refreshService(kube: KubeApi): Promise<void> {
    if (serviceForbidden || performance.now() - serviceReadAt < serviceRefreshMs) {
      return;
    }
    serviceReadAt = performance.now();
    const where = `Service ${namespace ?? "default"}/${target.service}`;
    try {
      const read = await readTrafficDistribution(
        kube,
        namespace ?? "default",
        target.service,
        stop.signal,
        options.requestTimeoutMs,
      );
      if (read.kind === "forbidden") {
        serviceForbidden = true;
        logger.info(
          `${prefix()}: cannot read the ${where} (${read.message}); following the EndpointSlices' topology hints ` +
            `only. To follow its spec.trafficDistribution, grant the verb get on services in namespace "${namespace ?? "default"}"`,
        );
        return;
      }
      const next = read.kind === "found" ? read.value : undefined;
      if (next !== trafficDistribution) {
        trafficDistribution = next;
        logger.debug(`${prefix()}: the ${where} has trafficDistribution ${next ?? "unset"}`);
        publish();
      }
    } catch (error) {
      if (!stop.signal.aborted) {
        logger.debug(
          `${prefix()}: reading the ${where} failed (${error instanceof Error ? error.message : String(error)})`,
        );
      }
    }
  }

  /** One attempt: (re)list if needed, then one watch request. Throws to back off. */
  async function attempt(): Promise<void> {
    const kube = await kubeApi();
    namespace ??= kube.defaultNamespace;
    await refreshService(kube);
    if (resourceVersion === undefined) {
      await list(kube);
    }
    if (!stop.signal.aborted && resourceVersion !== undefined) {
      await watch(kube, resourceVersion);
    }
  }

  async function run(): Promise<void> {
    while (!stop.signal.aborted) {
      try {
        // A fresh pRetry per successful attempt: the backoff starts over once the API server answered.
        await pRetry(attempt, {
          retries: Number.POSITIVE_INFINITY,
          factor: 1.6,
          minTimeout: options.reconnectInitialMs,
          maxTimeout: options.reconnectMaxMs,
          randomize: true,
          signal: stop.signal,
          onFailedAttempt: ({ error }) => fail(error),
        });
      } catch (error) {
        if (stop.signal.aborted) {
          return;
        }
        // p-retry does not retry a TypeError (here: an EndpointSlice too malformed to read); report it and go on
        // after the longest delay.
        fail(error);
        await pause(options.reconnectMaxMs);
      }
    }
  }

  /** Waits, or less if the resolver is closed meanwhile. */
  function pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (stop.signal.aborted) {
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(timer);
        stop.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      stop.signal.addEventListener("abort", done, { once: true });
    });
  }

  return {
    start(l) {
      if (listener !== undefined) {
        throw new Error(`${prefix()}: start() was called twice`);
      }
      if (stop.signal.aborted) {
        throw new Error(`${prefix()}: start() after close()`);
      }
      listener = l;
      void run();
    },
    refresh() {
      // The watch already delivers every change; nothing to do.
    },
    close() {
      stop.abort();
    },
    async zoneOfNode(node) {
      const why = `set locality.zone or MESHLITE_ZONE instead`;
      try {
        const read = await readNodeZone(await kubeApi(), node, stop.signal, options.requestTimeoutMs);
        if (read.kind === "found") {
          if (read.value === undefined) logger.info(`${prefix()}: node "${node}" has no ${zoneLabel} label; ${why}`);
          return read.value;
        }
        logger.info(
          read.kind === "forbidden"
            ? `${prefix()}: cannot read node "${node}" for the client's zone (${read.message}); grant the verb get on ` +
                `nodes (a ClusterRole: nodes are cluster-scoped), or ${why}`
            : `${prefix()}: node "${node}" (NODE_NAME) does not exist; ${why}`,
        );
      } catch (error) {
        if (!stop.signal.aborted) {
          logger.info(
            `${prefix()}: reading node "${node}" for the client's zone failed (${error instanceof Error ? error.message : String(error)}); ${why}`,
          );
        }
      }
      return undefined;
    },
  };
}
