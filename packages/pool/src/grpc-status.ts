/**
 * The gRPC status codes the pool itself needs, as numbers: the pool knows no
 * message layer (Connect's `Code` has the same values).
 */
export const grpcStatus = {
  ok: 0,
  canceled: 1,
  unknown: 2,
  deadlineExceeded: 4,
  resourceExhausted: 8,
  internal: 13,
  unavailable: 14,
  dataLoss: 15,
} as const;
