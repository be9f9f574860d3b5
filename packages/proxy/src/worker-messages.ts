/** What the primary asks a worker over the cluster's IPC channel. */
export type WorkerQuestion = "metrics" | "ready" | "routes";

/** Messages from the primary to a worker. */
export type PrimaryMessage =
  | { type: "meshlite:ask"; id: number; what: WorkerQuestion }
  /** Stop accepting, finish the calls in flight within the grace time, exit. */
  | { type: "meshlite:drain" };

/** Messages from a worker to the primary. */
export type WorkerMessage =
  | { type: "meshlite:listening"; address: string; port: number }
  | { type: "meshlite:answer"; id: number; body: unknown };

/** The environment variable that marks a worker process and holds its slot ("0", "1", ...). */
export const workerEnv = "MESHLITE_PROXY_WORKER";
