/**
 * A gRPC response content type: `application/grpc`, `application/grpc+proto`
 * or `application/grpc+json` (optionally with a UTF-8 charset), as Connect's
 * gRPC transport accepts them. Local: Connect exports its own only privately.
 */
export const contentTypeRegExp = /^application\/grpc(?:\+(?:json(?:; ?charset=utf-?8)?|proto))?$/i;
