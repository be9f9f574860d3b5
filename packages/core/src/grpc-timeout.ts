/**
 * Formats a `grpc-timeout` header value: at most 8 digits with the finest
 * unit that fits (gRPC over HTTP/2: `TimeoutValue` is 1 to 8 digits), so a
 * deadline of more than about 27.8 hours goes out in seconds, minutes or
 * hours instead of as an invalid header. Rounds up, and never below 1 ms.
 */
export function encodeGrpcTimeout(timeoutMs: number): string {
  const ms = Math.max(1, Math.ceil(timeoutMs));
  if (ms < 1e8) return `${ms}m`;
  const s = Math.ceil(ms / 1000);
  if (s < 1e8) return `${s}S`;
  const m = Math.ceil(s / 60);
  if (m < 1e8) return `${m}M`;
  return `${Math.min(99_999_999, Math.ceil(m / 60))}H`;
}
