import { Code } from "@connectrpc/connect";

/**
 * Codes that say the endpoint, not the call, is at fault: they count as the
 * endpoint's failures for outlier detection (in the channel and the proxy).
 */
export const endpointFailureCodes: ReadonlySet<Code> = new Set([
  Code.Unavailable,
  Code.Internal,
  Code.Unknown,
  Code.DataLoss,
]);
