/**
 * The state of the connection to one endpoint, as in gRPC's connectivity
 * semantics.
 *
 * - `idle`: no connection and none being made.
 * - `connecting`: dialling, TLS and HTTP/2 handshake in progress.
 * - `ready`: connected; calls can be sent.
 * - `transient-failure`: the last attempt failed; a new one follows after backoff.
 * - `shutdown`: closed for good.
 */
export type ConnectivityState = "idle" | "connecting" | "ready" | "transient-failure" | "shutdown";
