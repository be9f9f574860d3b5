import { Code } from "@connectrpc/connect";

// The Connect protocol's names and HTTP statuses of error codes
// (connectrpc.com/docs/protocol, "Error Codes"). Local: Connect exports its
// own helpers for these only privately, outside semantic versioning.

const httpStatus: Record<Code, number> = {
  [Code.Canceled]: 499,
  [Code.Unknown]: 500,
  [Code.InvalidArgument]: 400,
  [Code.DeadlineExceeded]: 504,
  [Code.NotFound]: 404,
  [Code.AlreadyExists]: 409,
  [Code.PermissionDenied]: 403,
  [Code.ResourceExhausted]: 429,
  [Code.FailedPrecondition]: 400,
  [Code.Aborted]: 409,
  [Code.OutOfRange]: 400,
  [Code.Unimplemented]: 501,
  [Code.Internal]: 500,
  [Code.Unavailable]: 503,
  [Code.DataLoss]: 500,
  [Code.Unauthenticated]: 401,
};

/** The HTTP status of a Connect unary error response with this code. */
export function codeToHttpStatus(code: Code): number {
  return httpStatus[code] ?? 500;
}

/** The code's name in Connect's JSON errors: "unavailable", "deadline_exceeded". */
export function codeToString(code: Code): string {
  const name = Code[code] as string | undefined;
  if (name === undefined) return "unknown";
  return name.replace(/[A-Z]/g, (c, i: number) => (i > 0 ? "_" : "") + c.toLowerCase());
}
