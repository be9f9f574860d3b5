// meshlite's own HTTP/2 (frames, HPACK, flow control, the client session),
// without node:http2's stream objects and without Connect: the lean transport
// runs on its client session, the proxy's frame engine on both its roles.

export { createClientSession } from "./h2/client-session.js";
export type { ClientSession, ClientSessionOptions } from "./h2/client-session-options.js";
export type { ClientStreamOwner } from "./h2/client-stream.js";
export { ClientStream } from "./h2/client-stream.js";
export type { FlowControl, FlowControlOptions, FlowWindow } from "./h2/flow-control.js";
export { createFlowControl } from "./h2/flow-control.js";
export type { ConnectionRole, FrameConnectionOptions, SendingStream } from "./h2/frame-connection.js";
export { FrameConnection, socketHighWater } from "./h2/frame-connection.js";
export type { FrameReader, FrameReaderOptions } from "./h2/frame-reader.js";
export { createFrameReader } from "./h2/frame-reader.js";
export {
  clientPreface,
  defaultInitialWindowSize,
  Flag,
  FrameType,
  frameHeaderLength,
  maxMaxFrameSize,
  maxWindowSize,
  minMaxFrameSize,
  SettingId,
} from "./h2/frame-types.js";
export type { FrameWriter, FrameWriterOptions } from "./h2/frame-writer.js";
export { createFrameWriter } from "./h2/frame-writer.js";
export { CompressionError, ErrorCode, H2Error, HeaderListTooLargeError } from "./h2/h2-error.js";
export type { HeaderBlockAssembler, HeaderBlockAssemblerOptions } from "./h2/header-block.js";
export { createHeaderBlockAssembler } from "./h2/header-block.js";
export type { HpackDecoder, HpackDecoderOptions } from "./h2/hpack-decoder.js";
export { createHpackDecoder } from "./h2/hpack-decoder.js";
export type { DynamicTable } from "./h2/hpack-dynamic-table.js";
export type { HpackEncoder, HpackEncoderOptions } from "./h2/hpack-encoder.js";
export { createHpackEncoder } from "./h2/hpack-encoder.js";
export { requestFields, sensitiveFields } from "./h2/request-fields.js";
export { readResponseHead, readTrailers } from "./h2/response-headers.js";
export type { Settings, SettingsChanges } from "./h2/settings.js";
export { applySettings, initialSettings, validateSettings } from "./h2/settings.js";
