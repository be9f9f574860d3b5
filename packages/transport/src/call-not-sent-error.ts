const notSentBrand = Symbol.for("meshlite.call-not-sent");
const lostBrand = Symbol.for("meshlite.connection-lost");

// Brands rather than classes: errors created by Node.js get marked, and a
// brand is recognized across copies of this module (ESM and CJS side by side).
function mark(error: object, brand: symbol): void {
  (error as Record<symbol, boolean>)[brand] = true;
}

/** Whether the error, or any error in its `cause` chain, carries the brand. */
function hasBrand(error: unknown, brand: symbol): boolean {
  for (let e = error, depth = 0; typeof e === "object" && e !== null && depth < 8; depth++) {
    if ((e as Record<symbol, boolean>)[brand] === true) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * A call that provably never reached a server: there was no connection, the
 * connection refused new streams (GOAWAY), or the server answered the stream
 * with REFUSED_STREAM. Such a call is safe to send again elsewhere, whatever
 * the method does.
 */
export class CallNotSentError extends Error {
  override name = "CallNotSentError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    mark(this, notSentBrand);
  }
}

/** Marks an error object created by Node.js as "the call was not sent". */
export function markNotSent(error: object): void {
  mark(error, notSentBrand);
}

/** Whether an error, or any error in its `cause` chain, says the call never reached a server. */
export function isCallNotSent(error: unknown): boolean {
  return hasBrand(error, notSentBrand);
}

/** Marks an error as "the connection carrying the call was lost mid-call". */
export function markConnectionLost(error: object): void {
  mark(error, lostBrand);
}

/**
 * Whether a call failed because its connection died under it (reset, closed,
 * keepalive timeout). gRPC reports these as UNAVAILABLE; the call may or may
 * not have been processed.
 */
export function isConnectionLost(error: unknown): boolean {
  return hasBrand(error, lostBrand);
}
