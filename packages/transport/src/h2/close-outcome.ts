import { CallNotSentError, markConnectionLost } from "../call-not-sent-error.js";
import type { H2StreamClose } from "../h2-stream.js";
import { ErrorCode } from "./h2-error.js";

// How a client stream closed (H2StreamClose), one constructor per way.

/** Closed normally (or reset with NO_ERROR once the response was complete). One object for every such close. */
export const normalClose: H2StreamClose = Object.freeze({ rstCode: 0, notSent: false, connectionLost: false });

/** Provably never processed by the server; its error is a CallNotSentError. */
export function notSentClose(why: string, cause?: Error): H2StreamClose {
  return {
    rstCode: ErrorCode.REFUSED_STREAM,
    notSent: true,
    connectionLost: false,
    error: new CallNotSentError(why, cause === undefined ? undefined : { cause }),
  };
}

/** The connection went away under the stream; its error is marked so (isConnectionLost), as node:http2's are. */
export function lostClose(rstCode: number, cause: Error | undefined): H2StreamClose {
  const error = new Error(`connection lost${cause ? `: ${cause.message}` : ""}`, { cause });
  markConnectionLost(error);
  return { rstCode, notSent: false, connectionLost: true, error };
}

/** Reset, by the consumer (no error) or for a broken rule (`error`). */
export function resetClose(rstCode: number, error?: Error): H2StreamClose {
  return error === undefined
    ? { rstCode, notSent: false, connectionLost: false }
    : { rstCode, notSent: false, connectionLost: false, error };
}
