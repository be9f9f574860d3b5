import type { IncomingMessage } from "node:http";

/** How one watch request ended. */
export type WatchOutcome =
  | { kind: "ended"; delivered: number }
  | { kind: "expired" }
  | { kind: "idle" }
  | { kind: "broken"; error: Error; delivered: number }
  | { kind: "error"; error: Error };

/** One line of a watch stream: `{"type": "ADDED", "object": {...}}`. */
export interface WatchEvent {
  type?: string;
  object?: {
    metadata?: { name?: unknown; resourceVersion?: unknown };
    code?: unknown;
    message?: unknown;
    reason?: unknown;
  };
}

/**
 * Reads a watch response: newline-delimited JSON events, each passed to
 * `onEvent`, until the stream ends, breaks, delivers nothing (not even a
 * bookmark) for `idleTimeoutMs`, or `onEvent` returns an outcome (410, an
 * ERROR event) or throws (an "error" outcome). The response is destroyed when
 * this resolves.
 */
export function readWatchStream(
  response: IncomingMessage,
  idleTimeoutMs: number,
  onEvent: (event: WatchEvent) => WatchOutcome | undefined,
): Promise<WatchOutcome> {
  return new Promise((resolve) => {
    let buffer = "";
    let delivered = 0;
    let done = false;
    const finish = (outcome: WatchOutcome) => {
      if (done) {
        return;
      }
      done = true;
      clearTimeout(idle);
      response.destroy();
      resolve(outcome);
    };
    const idle = setTimeout(() => finish({ kind: "idle" }), idleTimeoutMs);
    response.setEncoding("utf8");
    response.on("data", (chunk: string) => {
      buffer += chunk;
      let newline = buffer.indexOf("\n");
      while (!done && newline >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf("\n");
        if (line === "") {
          continue;
        }
        delivered++;
        idle.refresh();
        let event: WatchEvent;
        try {
          event = JSON.parse(line) as WatchEvent;
        } catch {
          finish({ kind: "error", error: new Error(`unparsable watch event: ${line.slice(0, 200)}`) });
          return;
        }
        // A throw here (a slice too malformed to merge) would escape the 'data' listener as an uncaught exception.
        let outcome: WatchOutcome | undefined;
        try {
          outcome = onEvent(event);
        } catch (error) {
          outcome = { kind: "error", error: error instanceof Error ? error : new Error(String(error)) };
        }
        if (outcome !== undefined) {
          finish(outcome);
        }
      }
    });
    response.once("end", () => finish({ kind: "ended", delivered }));
    response.once("error", (error) => finish({ kind: "broken", error, delivered }));
    response.once("close", () =>
      finish({ kind: "broken", error: new Error("the API server closed the watch connection"), delivered }),
    );
  });
}
