/** HTTP/2 error codes (RFC 9113 section 7). */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

/**
 * A violation of HTTP/2 by the peer. `streamId` 0 means a connection error
 * (answer with GOAWAY carrying `code`, then close); any other id is a stream
 * error (answer with RST_STREAM on that stream; the connection goes on).
 */
export class H2Error extends Error {
  override name = "H2Error";
  constructor(
    /** The RFC 9113 error code to send. */
    readonly code: number,
    /** 0 for a connection error, else the stream the error ends. */
    readonly streamId: number,
    message: string,
  ) {
    super(message);
  }

  /** Whether the whole connection must end (GOAWAY), not just one stream. */
  get isConnectionError(): boolean {
    return this.streamId === 0;
  }
}

/**
 * Malformed HPACK input (RFC 7541): always a connection error of type
 * COMPRESSION_ERROR, since the two ends' dynamic tables can no longer agree.
 */
export class CompressionError extends H2Error {
  override name = "CompressionError";
  constructor(message: string) {
    super(ErrorCode.COMPRESSION_ERROR, 0, message);
  }
}

/**
 * A header list larger than the decoder's maxHeaderListSize. The block was
 * still decoded to the end, so the dynamic table stays in step and the
 * connection can go on: the caller refuses only the stream (e.g. RST_STREAM,
 * or a 431 / RESOURCE_EXHAUSTED answer).
 */
export class HeaderListTooLargeError extends Error {
  override name = "HeaderListTooLargeError";
  constructor(
    /** The header list size as RFC 9113 section 6.5.2 counts it (name + value + 32 per field). */
    readonly size: number,
    /** The limit it crossed. */
    readonly limit: number,
  ) {
    super(`header list of ${size} bytes is over the limit of ${limit}`);
  }
}
