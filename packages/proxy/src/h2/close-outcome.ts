import { CallNotSentError } from "@meshlite/transport/connection";
import type { UpstreamClose } from "../upstream-stream.js";
import { ErrorCode } from "./h2-error.js";

// How a client stream closed (UpstreamClose), one constructor per way.

/** Closed normally (or reset with NO_ERROR once the response was complete). One object for every such close. */
export const normalClose: UpstreamClose = Object.freeze({ rstCode: 0, notSent: false, connectionLost: false });

/** Provably never processed by the server; its error is a CallNotSentError. */
export function notSentClose(why: string, cause?: Error): UpstreamClose {
  return {
    rstCode: ErrorCode.REFUSED_STREAM,
    notSent: true,
    connectionLost: false,
    error: new CallNotSentError(why, cause === undefined ? undefined : { cause }),
  };
}

/** The connection went away under the stream. */
export function lostClose(rstCode: number, cause: Error | undefined): UpstreamClose {
  const error = new Error(`connection lost${cause ? `: ${cause.message}` : ""}`, { cause });
  return { rstCode, notSent: false, connectionLost: true, error };
}

/** Reset, by the consumer (no error) or for a broken rule (`error`). */
export function resetClose(rstCode: number, error?: Error): UpstreamClose {
  return error === undefined
    ? { rstCode, notSent: false, connectionLost: false }
    : { rstCode, notSent: false, connectionLost: false, error };
}
