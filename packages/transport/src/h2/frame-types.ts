/** Frame types (RFC 9113 section 6). */
export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** Frame flags (RFC 9113 section 6); each applies to the types named. */
export const Flag = {
  /** DATA, HEADERS */
  END_STREAM: 0x1,
  /** SETTINGS, PING */
  ACK: 0x1,
  /** HEADERS, PUSH_PROMISE, CONTINUATION */
  END_HEADERS: 0x4,
  /** DATA, HEADERS, PUSH_PROMISE */
  PADDED: 0x8,
  /** HEADERS */
  PRIORITY: 0x20,
} as const;

/** SETTINGS parameters (RFC 9113 section 6.5.2). */
export const SettingId = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
  /** RFC 8441 */
  ENABLE_CONNECT_PROTOCOL: 0x8,
} as const;

/** Length of the frame header. */
export const frameHeaderLength = 9;
/** The smallest SETTINGS_MAX_FRAME_SIZE, and its initial value. */
export const minMaxFrameSize = 16384;
/** The largest SETTINGS_MAX_FRAME_SIZE (2^24 − 1). */
export const maxMaxFrameSize = 16777215;
/** The largest flow-control window (2^31 − 1), and the largest INITIAL_WINDOW_SIZE. */
export const maxWindowSize = 2147483647;
/** The initial flow-control window of a connection and of each stream. */
export const defaultInitialWindowSize = 65535;

/** The client connection preface (RFC 9113 section 3.4), before the client's SETTINGS. */
export const clientPreface: Buffer = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
