import type { AddressInfo } from "node:net";
import type { createProxy } from "./create-proxy.js";
import type { PrimaryMessage, WorkerMessage } from "./worker-messages.js";

type RunningProxy = ReturnType<typeof createProxy>;

/** A worker's side of the IPC channel to the primary. */
export interface WorkerLink {
  /** Says the worker listens, and from then on answers the primary's questions about `proxy`. */
  serve(proxy: RunningProxy, address: AddressInfo): void;
}

/**
 * Connects a worker process to its primary. Made before the proxy starts, so
 * a drain that comes while it is still starting is not lost: `onDrain` runs
 * (once) whenever the primary asks for it.
 */
export function connectToPrimary(onDrain: () => void): WorkerLink {
  let proxy: RunningProxy | undefined;
  const send = (message: WorkerMessage) => {
    // The channel is gone when the primary is; the worker exits then anyway.
    if (process.connected) process.send?.(message);
  };
  let drained = false;
  process.on("message", (message: PrimaryMessage) => {
    if (message?.type === "meshlite:drain") {
      if (!drained) onDrain();
      drained = true;
    } else if (message?.type === "meshlite:ask" && proxy !== undefined) {
      const body =
        message.what === "metrics" ? proxy.metrics.render() : message.what === "ready" ? proxy.ready() : proxy.routes();
      send({ type: "meshlite:answer", id: message.id, body });
    }
  });
  return {
    serve(p, address) {
      proxy = p;
      p.metrics.addGauge(
        "meshlite_proxy_worker_resident_memory_bytes",
        "Resident set size of the worker process.",
        () => [[{}, process.memoryUsage.rss()]],
      );
      send({ type: "meshlite:listening", address: address.address, port: address.port });
    },
  };
}
