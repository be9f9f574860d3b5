import type { BodySink } from "../../src/request-body.js";

/**
 * A body sink that records what it is handed, and whether
 * any of it came from inside one of the test's calls into the body (`call`):
 * a RequestBody never delivers re-entrantly.
 */
export function recordingSink() {
  const got = { chunks: [] as Buffer[], ended: false, insideCall: false, reentered: false };
  const sink: BodySink = {
    data(chunk) {
      if (got.insideCall) got.reentered = true;
      got.chunks.push(chunk);
    },
    end() {
      if (got.insideCall) got.reentered = true;
      got.ended = true;
    },
  };
  /** Calls into the body, noting any delivery from inside the call. */
  const call = (f: () => void) => {
    got.insideCall = true;
    try {
      f();
    } finally {
      got.insideCall = false;
    }
  };
  return { got, sink, call };
}
