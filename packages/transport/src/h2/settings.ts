import { maxMaxFrameSize, maxWindowSize, minMaxFrameSize, SettingId } from "./frame-types.js";
import { ErrorCode, H2Error } from "./h2-error.js";

/** One side's SETTINGS (RFC 9113 section 6.5.2), with the initial values until a SETTINGS frame changes them. */
export interface Settings {
  headerTableSize: number;
  enablePush: boolean;
  /** Infinity until set: the RFC sets no initial limit. */
  maxConcurrentStreams: number;
  initialWindowSize: number;
  maxFrameSize: number;
  /** Infinity until set. */
  maxHeaderListSize: number;
  enableConnectProtocol: boolean;
}

/** The values a peer has before its first SETTINGS frame. */
export function initialSettings(): Settings {
  return {
    headerTableSize: 4096,
    enablePush: true,
    maxConcurrentStreams: Number.POSITIVE_INFINITY,
    initialWindowSize: 65535,
    maxFrameSize: minMaxFrameSize,
    maxHeaderListSize: Number.POSITIVE_INFINITY,
    enableConnectProtocol: false,
  };
}

/**
 * Checks a SETTINGS payload (length already checked to be a multiple of 6):
 * ENABLE_PUSH and ENABLE_CONNECT_PROTOCOL 0 or 1, INITIAL_WINDOW_SIZE at most
 * 2^31 − 1 (FLOW_CONTROL_ERROR), MAX_FRAME_SIZE within 2^14..2^24 − 1.
 * Throws a connection H2Error; unknown parameters are ignored.
 */
export function validateSettings(payload: Uint8Array): void {
  const view = payload;
  for (let i = 0; i + 6 <= view.length; i += 6) {
    const id = (view[i]! << 8) | view[i + 1]!;
    const value = readUint32(view, i + 2);
    switch (id) {
      case SettingId.ENABLE_PUSH:
      case SettingId.ENABLE_CONNECT_PROTOCOL:
        if (value > 1)
          throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, `SETTINGS parameter ${id} must be 0 or 1, not ${value}`);
        break;
      case SettingId.INITIAL_WINDOW_SIZE:
        if (value > maxWindowSize) {
          throw new H2Error(ErrorCode.FLOW_CONTROL_ERROR, 0, `SETTINGS_INITIAL_WINDOW_SIZE ${value} is over 2^31-1`);
        }
        break;
      case SettingId.MAX_FRAME_SIZE:
        if (value < minMaxFrameSize || value > maxMaxFrameSize) {
          throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, `SETTINGS_MAX_FRAME_SIZE ${value} is outside 16384..16777215`);
        }
        break;
    }
  }
}

/** Bit per parameter id (1 << id) that applySettings changed. */
export type SettingsChanges = number;

/**
 * Applies a validated SETTINGS payload to `settings`, in order (a parameter
 * given twice takes the last value). Returns which parameters changed value,
 * as bits 1 << SettingId, so the caller can resize the HPACK encoder's table
 * or adjust stream windows.
 */
export function applySettings(payload: Uint8Array, settings: Settings): SettingsChanges {
  let changes = 0;
  for (let i = 0; i + 6 <= payload.length; i += 6) {
    const id = (payload[i]! << 8) | payload[i + 1]!;
    const value = readUint32(payload, i + 2);
    switch (id) {
      case SettingId.HEADER_TABLE_SIZE:
        if (settings.headerTableSize !== value) changes |= 1 << id;
        settings.headerTableSize = value;
        break;
      case SettingId.ENABLE_PUSH:
        if (settings.enablePush !== (value === 1)) changes |= 1 << id;
        settings.enablePush = value === 1;
        break;
      case SettingId.MAX_CONCURRENT_STREAMS:
        if (settings.maxConcurrentStreams !== value) changes |= 1 << id;
        settings.maxConcurrentStreams = value;
        break;
      case SettingId.INITIAL_WINDOW_SIZE:
        if (settings.initialWindowSize !== value) changes |= 1 << id;
        settings.initialWindowSize = value;
        break;
      case SettingId.MAX_FRAME_SIZE:
        if (settings.maxFrameSize !== value) changes |= 1 << id;
        settings.maxFrameSize = value;
        break;
      case SettingId.MAX_HEADER_LIST_SIZE:
        if (settings.maxHeaderListSize !== value) changes |= 1 << id;
        settings.maxHeaderListSize = value;
        break;
      case SettingId.ENABLE_CONNECT_PROTOCOL:
        if (settings.enableConnectProtocol !== (value === 1)) changes |= 1 << id;
        settings.enableConnectProtocol = value === 1;
        break;
    }
  }
  return changes;
}

export function readUint32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}
