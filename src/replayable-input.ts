/**
 * A request stream that can be read again from the start, as long as no more
 * than `maxMessages` were read: a streaming call that never reached a server
 * is retried with the messages its first attempt already pulled.
 *
 * The source is finalized (its `return()` runs, and with it a generator's
 * `finally`) once the last attempt stops reading it: when the view of the
 * committed attempt is returned or thrown into, or at `release()` when the
 * call failed for good. A view abandoned while a retry may still come leaves
 * the source open.
 */
export interface ReplayableInput<T> {
  /** A fresh view of the stream from its first message. */
  iterable(): AsyncIterable<T>;
  /** Whether a new view still starts at the first message. */
  canReplay(): boolean;
  /** No more replays: the latest view is the last one; the buffer goes as that view reads it. */
  commit(): void;
  /** No more attempts (the call failed): finalize the source now. */
  release(): void;
}

function noop() {}

export function createReplayableInput<T>(source: AsyncIterable<T>, maxMessages: number): ReplayableInput<T> {
  let iterator: AsyncIterator<T> | undefined;
  let buffer: T[] | undefined = [];
  let pulled = 0;
  let done = false;
  let pulling: Promise<IteratorResult<T>> | undefined;
  let committed = false;
  let finalized = false;
  // The view handed to the newest attempt, and whether that attempt stopped reading it.
  let latest = 0;
  let latestAbandoned = false;

  function pull(): Promise<IteratorResult<T>> {
    iterator ??= source[Symbol.asyncIterator]();
    pulling ??= iterator.next().then((r) => {
      pulling = undefined;
      if (r.done) {
        done = true;
      } else {
        pulled++;
        if (buffer !== undefined && !committed) {
          if (buffer.length < maxMessages) buffer.push(r.value);
          else buffer = undefined;
        }
      }
      return r;
    });
    return pulling;
  }

  /** Ends the source once; a source read to its end (or never read) needs nothing. */
  function finalize(error?: unknown): void {
    if (finalized) return;
    finalized = true;
    buffer = undefined;
    const it = iterator;
    if (it === undefined || done) return;
    if (error !== undefined && it.throw !== undefined) it.throw(error).catch(noop);
    it.return?.().then(noop, noop);
  }

  function abandon(view: number, error?: unknown): void {
    if (view !== latest) return;
    latestAbandoned = true;
    if (committed) finalize(error);
  }

  return {
    iterable() {
      const view = ++latest;
      latestAbandoned = false;
      let position = 0;
      return {
        [Symbol.asyncIterator]: () => ({
          async next(): Promise<IteratorResult<T>> {
            if (buffer !== undefined && position < buffer.length) {
              const value = buffer[position] as T;
              if (committed) {
                // The last attempt still reads what earlier ones pulled: drop each message once it is read.
                buffer[position] = undefined as T;
                if (position + 1 === buffer.length) buffer = undefined;
              }
              position++;
              return { done: false, value };
            }
            if (finalized || (done && position >= pulled)) return { done: true, value: undefined };
            const r = await pull();
            if (!r.done) position++;
            return r;
          },
          // Before commit a retry may still read the source: only the view ends.
          async return(): Promise<IteratorResult<T>> {
            abandon(view);
            return { done: true, value: undefined };
          },
          async throw(error?: unknown): Promise<IteratorResult<T>> {
            abandon(view, error);
            return { done: true, value: undefined };
          },
        }),
      };
    },
    canReplay: () => buffer !== undefined && !committed,
    commit() {
      committed = true;
      if (buffer?.length === 0) buffer = undefined;
      if (latestAbandoned) finalize();
    },
    release() {
      finalize();
    },
  };
}
