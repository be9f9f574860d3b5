/**
 * A request stream that can be read again from the start, as long as no more
 * than `maxMessages` were read: a streaming call that never reached a server
 * is retried with the messages its first attempt already pulled.
 */
export interface ReplayableInput<T> {
  /** A fresh view of the stream from its first message. */
  iterable(): AsyncIterable<T>;
  /** Whether a new view still starts at the first message. */
  canReplay(): boolean;
  /** No more replays: drop the buffer. */
  commit(): void;
}

export function createReplayableInput<T>(source: AsyncIterable<T>, maxMessages: number): ReplayableInput<T> {
  let iterator: AsyncIterator<T> | undefined;
  let buffer: T[] | undefined = [];
  let pulled = 0;
  let done = false;
  let pulling: Promise<IteratorResult<T>> | undefined;

  function pull(): Promise<IteratorResult<T>> {
    iterator ??= source[Symbol.asyncIterator]();
    pulling ??= iterator.next().then((r) => {
      pulling = undefined;
      if (r.done) {
        done = true;
      } else {
        pulled++;
        if (buffer !== undefined) {
          if (buffer.length < maxMessages) buffer.push(r.value);
          else buffer = undefined;
        }
      }
      return r;
    });
    return pulling;
  }

  return {
    iterable() {
      let position = 0;
      return {
        [Symbol.asyncIterator]: () => ({
          async next(): Promise<IteratorResult<T>> {
            if (buffer !== undefined && position < buffer.length) {
              return { done: false, value: buffer[position++] as T };
            }
            if (done && position >= pulled) return { done: true, value: undefined };
            const r = await pull();
            if (!r.done) position++;
            return r;
          },
          // A view is abandoned, not the source: a retry may still read it.
          async return(): Promise<IteratorResult<T>> {
            return { done: true, value: undefined };
          },
          async throw(): Promise<IteratorResult<T>> {
            return { done: true, value: undefined };
          },
        }),
      };
    },
    canReplay: () => buffer !== undefined,
    commit() {
      buffer = undefined;
    },
  };
}
