// The HTTP/2 pieces of the frame engine (issue 19; `engine: "frames"`).
// Internal for now: the package's index does not export them.
export type { ClientSession, ClientSessionOptions } from "./client-session.js";
export { createClientSession } from "./client-session.js";
export type { ClientStreamOwner } from "./client-stream.js";
export { ClientStream } from "./client-stream.js";
export type { FlowControl, FlowControlOptions, FlowWindow } from "./flow-control.js";
export { createFlowControl } from "./flow-control.js";
export type { ConnectionRole, FrameConnectionOptions, SendingStream } from "./frame-connection.js";
export { FrameConnection } from "./frame-connection.js";
export type { StreamOwner } from "./frame-downstream.js";
export { FrameDownstream } from "./frame-downstream.js";
export type { FrameReader, FrameReaderOptions } from "./frame-reader.js";
export { createFrameReader } from "./frame-reader.js";
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
} from "./frame-types.js";
export type { FrameWriter, FrameWriterOptions } from "./frame-writer.js";
export { createFrameWriter } from "./frame-writer.js";
export { CompressionError, ErrorCode, H2Error, HeaderListTooLargeError } from "./h2-error.js";
export type { HeaderBlockAssembler, HeaderBlockAssemblerOptions } from "./header-block.js";
export { createHeaderBlockAssembler } from "./header-block.js";
export type { HpackDecoder, HpackDecoderOptions } from "./hpack-decoder.js";
export { createHpackDecoder } from "./hpack-decoder.js";
export type { DynamicTable } from "./hpack-dynamic-table.js";
export type { HpackEncoder, HpackEncoderOptions } from "./hpack-encoder.js";
export { createHpackEncoder } from "./hpack-encoder.js";
export { requestFields, sensitiveFields } from "./request-fields.js";
export type { RequestHead } from "./request-headers.js";
export { readRequestHead } from "./request-headers.js";
export { readResponseHead, readTrailers } from "./response-headers.js";
export type { ServerSession, ServerSessionOptions } from "./server-session.js";
export { createServerSession } from "./server-session.js";
export type { Settings, SettingsChanges } from "./settings.js";
export { applySettings, initialSettings, validateSettings } from "./settings.js";
