import type { Logger } from "@meshlite/core";
import type { Channel } from "../../src/index.js";
import type { BackendProcess } from "../../test/support/backend-process.js";

/** A backend of the demo: a separate process on its own loopback address, like a pod. */
export interface DemoBackend {
  /** `host:port`; also the name it puts in its responses. */
  readonly address: string;
  /** The IP part, used as the column title. */
  readonly host: string;
  readonly process: BackendProcess;
}

/** What a scene gets from the demo. */
export interface DemoContext {
  /** The backends running now, in start order. */
  readonly backends: readonly DemoBackend[];
  /**
   * Starts another backend (e.g. a scale-up); the demo stops it at the end.
   * `port` defaults to any free one (backends behind one DNS name share a port).
   */
  startBackend(host: string, options?: { port?: number }): Promise<DemoBackend>;
  /** Registers a channel so that it is closed however the demo ends. Returns it. */
  track<C extends Channel>(channel: C): C;
  /** For channels: quiet once the demo is shutting down (backends go away before channels notice). */
  readonly logger: Logger;
  /** Aborted on Ctrl-C: stop starting calls and return. */
  readonly signal: AbortSignal;
}

/**
 * One part of the demo. It runs its clients against the backends, shows a live
 * view while it does, and returns the lines it contributes to the final summary.
 */
export interface Scene {
  readonly title: string;
  /** One or two sentences: what the viewer is about to see and why it matters. */
  readonly intro: string;
  run(context: DemoContext): Promise<string[]>;
}
