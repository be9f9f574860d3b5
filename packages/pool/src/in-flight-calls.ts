/**
 * Counts the calls in flight of a channel or proxy, so that closing can let
 * them finish: `close-after-in-flight`.
 */
export interface InFlightCalls {
  /** A call starts; returns the count with it. */
  start(): number;
  /** A call ended. */
  end(): void;
  count(): number;
  /**
   * Resolves once no call is in flight, or after `graceMs`, whichever comes
   * first; true when every call finished.
   */
  settled(graceMs: number): Promise<boolean>;
}

export function createInFlightCalls(): InFlightCalls {
  let count = 0;
  const idle = new Set<() => void>();
  return {
    start: () => ++count,
    end() {
      if (--count === 0) for (const wake of [...idle]) wake();
    },
    count: () => count,
    settled(graceMs) {
      if (count === 0) return Promise.resolve(true);
      return new Promise<boolean>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          idle.delete(wake);
          resolve(count === 0);
        };
        const timer = setTimeout(wake, graceMs);
        idle.add(wake);
      });
    },
  };
}
