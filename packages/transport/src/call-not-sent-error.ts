const brand = Symbol.for("meshlite.call-not-sent");

/**
 * A call that provably never reached a server: there was no connection, the
 * connection refused new streams (GOAWAY), or the server answered the stream
 * with REFUSED_STREAM. Such a call is safe to send again elsewhere, whatever
 * the method does.
 */
export class CallNotSentError extends Error {
  override name = "CallNotSentError";
  readonly [brand] = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Marks an error object created by Node.js as "the call was not sent". */
export function markNotSent(error: object): void {
  (error as { [brand]?: boolean })[brand] = true;
}

/**
 * Whether an error, or any error in its `cause` chain, says the call never
 * reached a server. Checks a brand rather than `instanceof`, so that errors
 * from another copy of this module (ESM and CJS side by side) are recognized.
 */
export function isCallNotSent(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === "object" && e !== null && depth < 8; depth++) {
    if ((e as { [brand]?: boolean })[brand] === true) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

const lostBrand = Symbol.for("meshlite.connection-lost");

/** Marks an error as "the connection carrying the call was lost mid-call". */
export function markConnectionLost(error: object): void {
  (error as { [lostBrand]?: boolean })[lostBrand] = true;
}

/**
 * Whether a call failed because its connection died under it (reset, closed,
 * keepalive timeout). gRPC reports these as UNAVAILABLE; the call may or may
 * not have been processed.
 */
export function isConnectionLost(error: unknown): boolean {
  for (let e = error, depth = 0; typeof e === "object" && e !== null && depth < 8; depth++) {
    if ((e as { [lostBrand]?: boolean })[lostBrand] === true) {
      return true;
    }
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}
