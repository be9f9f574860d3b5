import { describe, expect, it } from "vitest";
import { createReplayableInput } from "../src/replayable-input.js";

// The replay buffer of a channel's streaming calls, on its own (no sockets):
// when the caller's request generator is ended, and that a retry reads every
// message the first attempt already pulled.
function source(count: number) {
  const state = { pulled: 0, finalized: false };
  async function* generate() {
    try {
      for (let i = 0; i < count; i++) {
        state.pulled++;
        yield i;
      }
    } finally {
      state.finalized = true;
    }
  }
  return { state, messages: generate() };
}

async function take(it: AsyncIterator<number>, n: number): Promise<number[]> {
  const got: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    got.push(r.value);
  }
  return got;
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("createReplayableInput", () => {
  it("an attempt abandoned before commit leaves the source open for the retry", async () => {
    const { state, messages } = source(10);
    const replay = createReplayableInput(messages, 128);
    const first = replay.iterable()[Symbol.asyncIterator]();
    expect(await take(first, 3)).toEqual([0, 1, 2]);
    await first.throw?.(new Error("attempt failed"));
    await first.return?.();
    await flush();
    expect(state.finalized).toBe(false);
    const retry = replay.iterable()[Symbol.asyncIterator]();
    expect(await take(retry, 5)).toEqual([0, 1, 2, 3, 4]);
  });

  it("after commit, the last attempt reads the messages earlier ones pulled, then the rest", async () => {
    const { state, messages } = source(6);
    const replay = createReplayableInput(messages, 128);
    const first = replay.iterable()[Symbol.asyncIterator]();
    expect(await take(first, 6)).toEqual([0, 1, 2, 3, 4, 5]);
    await first.return?.();
    const last = replay.iterable()[Symbol.asyncIterator]();
    expect(await take(last, 1)).toEqual([0]);
    replay.commit();
    expect(replay.canReplay()).toBe(false);
    expect(await take(last, 10)).toEqual([1, 2, 3, 4, 5]);
    expect(state).toEqual({ pulled: 6, finalized: true });
  });

  it("the committed attempt's return() ends the source", async () => {
    const { state, messages } = source(10_000);
    const replay = createReplayableInput(messages, 128);
    const view = replay.iterable()[Symbol.asyncIterator]();
    await take(view, 2);
    replay.commit();
    await view.return?.();
    await flush();
    expect(state.finalized).toBe(true);
    expect(state.pulled).toBe(2);
  });

  it("an attempt that stopped reading before commit has the source ended at commit", async () => {
    const { state, messages } = source(10_000);
    const replay = createReplayableInput(messages, 128);
    const view = replay.iterable()[Symbol.asyncIterator]();
    await take(view, 1);
    await view.return?.();
    replay.commit();
    await flush();
    expect(state.finalized).toBe(true);
  });

  it("release() ends the source when no attempt follows", async () => {
    const { state, messages } = source(10_000);
    const replay = createReplayableInput(messages, 128);
    await take(replay.iterable()[Symbol.asyncIterator](), 1);
    replay.release();
    await flush();
    expect(state.finalized).toBe(true);
  });
});
