import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { makeCerts } from "./certs.js";

/**
 * A list/watch server for discovery.k8s.io/v1 EndpointSlices that follows
 * the Kubernetes API conventions the resolver depends on: HTTPS with its own
 * CA, bearer tokens, Status objects on errors, lists carrying a
 * resourceVersion, watches streaming newline-delimited events (ADDED,
 * MODIFIED, DELETED, BOOKMARK, ERROR) from a resourceVersion, 410 Gone for a
 * compacted one, watch filtering by label selector (an object that stops
 * matching is sent as DELETED), timeoutSeconds. Plus fault switches.
 */
export interface FakeKubeApiServer {
  /** `https://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** The CA certificate (PEM) the server's certificate is signed by. */
  readonly caPath: string;
  /** The bearer token the server accepts. */
  readonly token: string;
  /** Accepts a new token from now on, and no longer the old one (as when a projected token rotates). */
  rotateToken(): string;
  /** Writes a kubeconfig for this server and returns its path. */
  writeKubeconfig(options?: {
    namespace?: string;
    token?: string;
    context?: string;
    /** Authenticate with a client certificate (user "meshlite-client") instead of a token. */
    clientCertificate?: boolean;
  }): string;
  /** Creates or replaces an EndpointSlice; returns its new resourceVersion. */
  applySlice(namespace: string, slice: SliceInput): string;
  /** Deletes an EndpointSlice; returns the deletion's resourceVersion. */
  deleteSlice(namespace: string, name: string): string;
  /** The current resourceVersion. */
  resourceVersion(): string;
  /** Forgets history: watching from any earlier resourceVersion gets 410 Gone. */
  compact(): void;
  /** How a too-old watch is refused: an ERROR event in a 200 stream (as the API server does) or an HTTP 410. */
  goneAs: "event" | "status";
  /** Sends ERROR 410 to every open watch (and compacts), as when the watch cache falls behind. */
  expireWatches(): number;
  /** Destroys the connection of every open watch; returns how many. */
  dropWatches(): number;
  /** Freezes every open watch: no events, no bookmarks, connection left open. Returns how many. */
  stallWatches(): number;
  /** Answers every request with 403 Forbidden while on. */
  forbid(on: boolean): void;
  /** Answers requests for one resource with 403 Forbidden while on (RBAC without that verb). */
  forbidResource(resource: "services" | "nodes", on: boolean): void;
  /** Creates or replaces a core/v1 Service (only what the resolver reads: spec.trafficDistribution). */
  applyService(namespace: string, service: { name: string; trafficDistribution?: string }): void;
  /** Creates or replaces a core/v1 Node with these labels. */
  applyNode(node: { name: string; labels: Record<string, string> }): void;
  /** Closes the listener and every connection; state is kept (etcd survives). */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  /** Watches currently streaming (not stalled). */
  activeWatches(): number;
  /** Emits "change" after every request, and when a watch opens or closes. */
  readonly events: EventEmitter;
  /** Every request received, in order. */
  readonly requests: RequestRecord[];
  /** Interval of BOOKMARK events on watches that asked for them. Default 1000 ms. */
  bookmarkIntervalMs: number;
  /** Ends every watch after at most this long, whatever its timeoutSeconds (as --min-request-timeout does). Default none. */
  maxWatchMs: number | undefined;
  close(): Promise<void>;
}

export interface RequestRecord {
  /** "get" is a GET of one Service or Node. */
  readonly kind: "list" | "watch" | "get" | "other";
  /** For "get": "services" or "nodes". */
  readonly resource?: string;
  readonly namespace?: string;
  readonly resourceVersion?: string;
  readonly status: number;
}

/** An endpoint of a test slice. */
export interface EndpointInput {
  ip: string;
  /** Default true; null leaves the field unset (which means ready). */
  ready?: boolean | null;
  serving?: boolean | null;
  terminating?: boolean | null;
  zone?: string;
  nodeName?: string;
  /** EndpointSlice hints, as the EndpointSlice controller writes them for trafficDistribution or topology-mode Auto. */
  hints?: { forZones?: string[]; forNodes?: string[] };
}

/** A test slice: which service, which endpoints, which ports. */
export interface SliceInput {
  name: string;
  service: string;
  endpoints: EndpointInput[];
  /** Default [{ name: "grpc", port: 50051 }]. Null for "all ports". */
  ports?: { name?: string; port: number; protocol?: string }[] | null;
  addressType?: "IPv4" | "IPv6";
  labels?: Record<string, string>;
  /** Fields written over the built object as they are, to make a malformed slice (e.g. `{ ports: 5 }`). */
  raw?: Record<string, unknown>;
}

interface StoredSlice {
  namespace: string;
  object: Record<string, unknown> & {
    metadata: { name: string; labels: Record<string, string>; resourceVersion?: string; namespace?: string };
  };
}

interface HistoryEntry {
  rv: number;
  namespace: string;
  type: "ADDED" | "MODIFIED" | "DELETED";
  before?: StoredSlice["object"];
  after: StoredSlice["object"];
}

interface Watch {
  namespace: string;
  selector: Record<string, string>;
  bookmarks: boolean;
  stalled: boolean;
  send(event: unknown): void;
  socket: Socket;
  end(): void;
}

let certificates: { dir: string; caPath: string; ca: Buffer; key: Buffer; cert: Buffer } | undefined;

/** Makes a CA, a server certificate for 127.0.0.1 and a client certificate (once per process), as files. */
function makeCertificates() {
  if (certificates) {
    return certificates;
  }
  // A client certificate for x509 authentication (user "meshlite-client"), as kubeadm issues them.
  const made = makeCerts({
    serverAltNames: ["IP:127.0.0.1", "DNS:localhost"],
    clientSubject: "/O=meshlite/CN=meshlite-client",
  });
  const dir = mkdtempSync(join(tmpdir(), "fake-kube-"));
  writeFileSync(join(dir, "ca.crt"), made.ca);
  writeFileSync(join(dir, "client.crt"), made.clientCert);
  writeFileSync(join(dir, "client.key"), made.clientKey);
  certificates = {
    dir,
    caPath: join(dir, "ca.crt"),
    ca: Buffer.from(made.ca),
    key: Buffer.from(made.serverKey),
    cert: Buffer.from(made.serverCert),
  };
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return certificates;
}

/** Builds an EndpointSlice object as the EndpointSlice controller writes it. */
function endpointSlice(input: SliceInput): Record<string, unknown> {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: input.name,
      labels: {
        "kubernetes.io/service-name": input.service,
        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
        ...input.labels,
      },
    },
    addressType: input.addressType ?? "IPv4",
    endpoints: input.endpoints.map((e) => {
      const conditions: Record<string, boolean> = {};
      const ready = e.ready === undefined ? true : e.ready;
      if (ready !== null) conditions.ready = ready;
      const serving = e.serving === undefined ? ready : e.serving;
      if (serving !== null) conditions.serving = serving;
      if (e.terminating !== undefined && e.terminating !== null) conditions.terminating = e.terminating;
      return {
        addresses: [e.ip],
        conditions,
        ...(e.zone ? { zone: e.zone } : {}),
        ...(e.nodeName ? { nodeName: e.nodeName } : {}),
        ...(e.hints
          ? {
              hints: {
                ...(e.hints.forZones ? { forZones: e.hints.forZones.map((name) => ({ name })) } : {}),
                ...(e.hints.forNodes ? { forNodes: e.hints.forNodes.map((name) => ({ name })) } : {}),
              },
            }
          : {}),
      };
    }),
    ports:
      input.ports === null
        ? null
        : (input.ports ?? [{ name: "grpc", port: 50051 }]).map((p) => ({
            name: p.name ?? "",
            port: p.port,
            protocol: p.protocol ?? "TCP",
          })),
    ...input.raw,
  };
}

function status(code: number, reason: string, message: string) {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code };
}

const collection = /^\/apis\/discovery\.k8s\.io\/v1\/namespaces\/([a-z0-9-]+)\/endpointslices$/;
const servicePath = /^\/api\/v1\/namespaces\/([a-z0-9-]+)\/services\/([a-z0-9.-]+)$/;
const nodePath = /^\/api\/v1\/nodes\/([a-z0-9.-]+)$/;

export async function startFakeKubeApiServer(options: { token?: string } = {}): Promise<FakeKubeApiServer> {
  const { caPath, ca, key, cert, dir } = makeCertificates();
  const token = options.token ?? `token-${Math.random().toString(36).slice(2)}`;
  const store = new Map<string, StoredSlice>(); // namespace/name
  const history: HistoryEntry[] = [];
  let rv = 1000;
  let compactedBelow = 0; // watching from rv < this is 410
  let forbidden = false;
  const forbiddenResources = new Set<string>();
  const services = new Map<string, Record<string, unknown>>(); // namespace/name
  const nodes = new Map<string, Record<string, unknown>>();
  const watches = new Set<Watch>();
  const sockets = new Set<{ destroy(): void }>();
  const requests: RequestRecord[] = [];
  const events = new EventEmitter();
  const changed = () => setImmediate(() => events.emit("change"));
  let port = 0;
  let listening = false;

  const matches = (object: StoredSlice["object"] | undefined, selector: Record<string, string>) =>
    object !== undefined && Object.entries(selector).every(([k, v]) => object.metadata.labels[k] === v);

  /** The event a watch with this namespace and selector sees for a history entry, if any. */
  function eventFor(entry: HistoryEntry, watch: Pick<Watch, "namespace" | "selector">) {
    if (entry.namespace !== watch.namespace) return undefined;
    const was = matches(entry.before, watch.selector);
    const is = entry.type !== "DELETED" && matches(entry.after, watch.selector);
    if (!was && !is) return undefined;
    const type = !was ? "ADDED" : !is ? "DELETED" : entry.type;
    return { type, object: entry.after };
  }

  function record(entry: Omit<HistoryEntry, "rv">): string {
    rv++;
    const full = { ...entry, rv };
    full.after = { ...full.after, metadata: { ...full.after.metadata, resourceVersion: String(rv) } };
    history.push(full);
    for (const watch of watches) {
      const event = eventFor(full, watch);
      if (event) watch.send(event);
    }
    return String(rv);
  }

  function parseSelector(text: string | null): Record<string, string> | undefined {
    const selector: Record<string, string> = {};
    if (!text) return selector;
    for (const part of text.split(",")) {
      const m = /^([^=!]+)==?([^=]*)$/.exec(part.trim());
      if (!m) return undefined;
      selector[m[1] as string] = m[2] as string;
    }
    return selector;
  }

  function json(res: import("node:http").ServerResponse, code: number, body: unknown) {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }

  // Client certificates are asked for but optional: a request authenticates with a token or a certificate.
  const server = https.createServer({ key, cert, ca, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    const url = new URL(req.url ?? "/", "https://fake");
    const match = collection.exec(url.pathname);
    const isWatch = url.searchParams.get("watch") === "1" || url.searchParams.get("watch") === "true";
    const kind = match ? (isWatch ? "watch" : "list") : "other";
    const namespace = match?.[1];
    const requestedRv = url.searchParams.get("resourceVersion") ?? undefined;
    const log = (code: number) => {
      changed();
      requests.push({
        kind,
        ...(namespace ? { namespace } : {}),
        ...(requestedRv !== undefined ? { resourceVersion: requestedRv } : {}),
        status: code,
      });
    };
    const socket = req.socket as TLSSocket;
    const certificateUser = socket.authorized ? socket.getPeerCertificate().subject?.CN : undefined;
    if (req.headers.authorization !== `Bearer ${server_.token}` && certificateUser !== "meshlite-client") {
      log(401);
      return json(res, 401, status(401, "Unauthorized", "Unauthorized"));
    }
    const serviceMatch = servicePath.exec(url.pathname);
    const nodeMatch = nodePath.exec(url.pathname);
    if (req.method === "GET" && (serviceMatch || nodeMatch)) {
      const resource = serviceMatch ? "services" : "nodes";
      const name = (serviceMatch ? serviceMatch[2] : nodeMatch?.[1]) as string;
      const ns = serviceMatch?.[1];
      const code = forbidden || forbiddenResources.has(resource) ? 403 : 200;
      const found = code === 200 ? (serviceMatch ? services.get(`${ns}/${name}`) : nodes.get(name)) : undefined;
      const final = code === 403 ? 403 : found ? 200 : 404;
      changed();
      requests.push({ kind: "get", resource, ...(ns ? { namespace: ns } : {}), status: final });
      if (final === 403) {
        return json(
          res,
          403,
          status(
            403,
            "Forbidden",
            `${resource} "${name}" is forbidden: User "system:serviceaccount:${ns ?? "default"}:client" cannot get resource "${resource}" in API group "" ` +
              (ns ? `in the namespace "${ns}"` : "at the cluster scope"),
          ),
        );
      }
      if (final === 404) return json(res, 404, status(404, "NotFound", `${resource} "${name}" not found`));
      return json(res, 200, found);
    }
    if (req.method !== "GET" || !match || namespace === undefined) {
      log(404);
      return json(res, 404, status(404, "NotFound", `the server could not find the requested resource`));
    }
    if (forbidden) {
      log(403);
      return json(
        res,
        403,
        status(
          403,
          "Forbidden",
          `endpointslices.discovery.k8s.io is forbidden: User "system:serviceaccount:${namespace}:client" cannot ` +
            `${isWatch ? "watch" : "list"} resource "endpointslices" in API group "discovery.k8s.io" in the namespace "${namespace}"`,
        ),
      );
    }
    const selector = parseSelector(url.searchParams.get("labelSelector"));
    if (selector === undefined) {
      log(400);
      return json(res, 400, status(400, "BadRequest", "unable to parse requirement: only equality is supported"));
    }
    const current = () =>
      [...store.values()].filter((s) => s.namespace === namespace && matches(s.object, selector)).map((s) => s.object);
    if (!isWatch) {
      log(200);
      return json(res, 200, {
        kind: "EndpointSliceList",
        apiVersion: "discovery.k8s.io/v1",
        metadata: { resourceVersion: String(rv) },
        items: current(),
      });
    }
    const from =
      requestedRv === undefined || requestedRv === "" || requestedRv === "0" ? undefined : Number(requestedRv);
    if (from !== undefined && !Number.isInteger(from)) {
      log(400);
      return json(res, 400, status(400, "BadRequest", `invalid resourceVersion "${requestedRv}"`));
    }
    const tooOld = from !== undefined && from < compactedBelow;
    if (tooOld && server_.goneAs === "status") {
      log(410);
      return json(res, 410, status(410, "Expired", `too old resource version: ${from} (${compactedBelow})`));
    }
    log(200);
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    const write = (event: unknown) => res.write(`${JSON.stringify(event)}\n`);
    if (tooOld) {
      write({ type: "ERROR", object: status(410, "Expired", `too old resource version: ${from} (${compactedBelow})`) });
      res.end();
      return;
    }
    let bookmarkTimer: NodeJS.Timeout | undefined;
    let timeoutTimer: NodeJS.Timeout | undefined;
    const watch: Watch = {
      namespace,
      selector,
      bookmarks: url.searchParams.get("allowWatchBookmarks") === "true",
      stalled: false,
      socket: req.socket,
      send(event) {
        if (!watch.stalled) write(event);
      },
      end() {
        cleanup();
        res.end();
      },
    };
    const cleanup = () => {
      if (watches.delete(watch)) changed();
      clearInterval(bookmarkTimer);
      clearTimeout(timeoutTimer);
    };
    res.on("close", cleanup);
    if (from === undefined) {
      for (const object of current()) write({ type: "ADDED", object });
    } else {
      for (const entry of history) {
        if (entry.rv <= from) continue;
        const event = eventFor(entry, watch);
        if (event) write(event);
      }
    }
    watches.add(watch);
    changed();
    if (watch.bookmarks) {
      bookmarkTimer = setInterval(() => {
        watch.send({
          type: "BOOKMARK",
          object: {
            kind: "EndpointSlice",
            apiVersion: "discovery.k8s.io/v1",
            metadata: { resourceVersion: String(rv) },
          },
        });
      }, server_.bookmarkIntervalMs);
    }
    const timeoutMs = Number(url.searchParams.get("timeoutSeconds") ?? "0") * 1000;
    const limitMs = Math.min(timeoutMs || Number.POSITIVE_INFINITY, server_.maxWatchMs ?? Number.POSITIVE_INFINITY);
    if (Number.isFinite(limitMs)) {
      timeoutTimer = setTimeout(() => watch.end(), limitMs);
    }
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });

  async function listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    port = (server.address() as AddressInfo).port;
    listening = true;
  }

  async function stop(): Promise<void> {
    if (!listening) return;
    listening = false;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // Every watch's connection is among these.
    for (const socket of sockets) socket.destroy();
    await closed;
  }

  await listen();

  const server_: FakeKubeApiServer = {
    url: `https://127.0.0.1:${port}`,
    rotateToken() {
      const next = `token-${Math.random().toString(36).slice(2)}`;
      (server_ as { token: string }).token = next;
      return next;
    },
    port,
    caPath,
    token,
    goneAs: "event",
    bookmarkIntervalMs: 1000,
    maxWatchMs: undefined,
    requests,
    events,
    writeKubeconfig(opts = {}) {
      const path = join(dir, `kubeconfig-${port}-${Math.random().toString(36).slice(2)}.yaml`);
      const context = opts.context ?? "fake";
      writeFileSync(
        path,
        [
          "apiVersion: v1",
          "kind: Config",
          "clusters:",
          "- name: fake",
          "  cluster:",
          `    server: https://127.0.0.1:${port}`,
          `    certificate-authority: ${caPath}`,
          "users:",
          "- name: fake-user",
          "  user:",
          ...(opts.clientCertificate
            ? [`    client-certificate: ${join(dir, "client.crt")}`, `    client-key: ${join(dir, "client.key")}`]
            : [`    token: ${opts.token ?? server_.token}`]),
          "contexts:",
          `- name: ${context}`,
          "  context:",
          "    cluster: fake",
          "    user: fake-user",
          ...(opts.namespace ? [`    namespace: ${opts.namespace}`] : []),
          `current-context: ${context}`,
          "",
        ].join("\n"),
      );
      return path;
    },
    applySlice(namespace, input) {
      const object = endpointSlice(input) as StoredSlice["object"];
      const key = `${namespace}/${input.name}`;
      const before = store.get(key)?.object;
      object.metadata = { ...object.metadata, namespace } as StoredSlice["object"]["metadata"];
      const version = record({ namespace, type: before ? "MODIFIED" : "ADDED", before, after: object });
      store.set(key, { namespace, object: history[history.length - 1]?.after as StoredSlice["object"] });
      return version;
    },
    deleteSlice(namespace, name) {
      const key = `${namespace}/${name}`;
      const before = store.get(key);
      if (!before) throw new Error(`no slice ${key}`);
      store.delete(key);
      return record({ namespace, type: "DELETED", before: before.object, after: before.object });
    },
    resourceVersion: () => String(rv),
    compact() {
      compactedBelow = rv;
      history.length = 0;
    },
    expireWatches() {
      server_.compact();
      let count = 0;
      for (const watch of [...watches]) {
        if (watch.stalled) continue;
        watch.send({ type: "ERROR", object: status(410, "Expired", "too old resource version") });
        watch.end();
        count++;
      }
      return count;
    },
    dropWatches() {
      let count = 0;
      for (const watch of [...watches]) {
        watch.socket.destroy();
        count++;
      }
      return count;
    },
    stallWatches() {
      let count = 0;
      for (const watch of watches) {
        if (!watch.stalled) {
          watch.stalled = true;
          changed();
          count++;
        }
      }
      return count;
    },
    forbid(on) {
      forbidden = on;
    },
    forbidResource(resource, on) {
      if (on) forbiddenResources.add(resource);
      else forbiddenResources.delete(resource);
    },
    applyService(namespace, service) {
      rv++;
      services.set(`${namespace}/${service.name}`, {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: service.name, namespace, resourceVersion: String(rv) },
        spec: {
          type: "ClusterIP",
          ports: [{ name: "grpc", port: 50051, protocol: "TCP" }],
          selector: { app: service.name },
          ...(service.trafficDistribution ? { trafficDistribution: service.trafficDistribution } : {}),
        },
      });
    },
    applyNode(node) {
      rv++;
      nodes.set(node.name, {
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: node.name, labels: node.labels, resourceVersion: String(rv) },
      });
    },
    stop,
    start: listen,
    activeWatches: () => [...watches].filter((w) => !w.stalled).length,
    close: stop,
  };
  return server_;
}
