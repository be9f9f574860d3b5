import { defaultInitialWindowSize, maxWindowSize } from "./frame-types.js";
import { ErrorCode, H2Error } from "./h2-error.js";

/**
 * HTTP/2 flow-control accounting (RFC 9113 section 5.2, 6.9) for one
 * connection: numbers only, no I/O. A plain object per stream, mutated in
 * place (no closure or allocation per frame).
 */
export interface FlowWindow {
  /** Bytes we may still send: the peer's window for us. Negative after the peer lowers INITIAL_WINDOW_SIZE. */
  send: number;
  /** Bytes the peer may still send us. */
  recv: number;
  /** Bytes received and released by the reader, not yet handed back in a WINDOW_UPDATE. */
  unacked: number;
}

export interface FlowControl {
  /** The connection's windows (stream 0). */
  readonly connection: FlowWindow;
  /** The increment to send in a WINDOW_UPDATE on stream 0 right after our SETTINGS (0: none), to open the connection window to connectionWindowSize. */
  readonly initialConnectionIncrement: number;
  /** Windows for a new stream, from the current initial window sizes. */
  openStream(): FlowWindow;
  /** Bytes of DATA that may go out on `stream` now: the smaller of its and the connection's send window, at least 0. */
  sendable(stream: FlowWindow): number;
  /** We sent a DATA frame with `n` bytes of payload (padding included) on `stream`. */
  sent(stream: FlowWindow, n: number): void;
  /**
   * A WINDOW_UPDATE came: `stream` undefined for stream 0. A window past
   * 2^31 − 1 is FLOW_CONTROL_ERROR: a stream error on a stream, a connection
   * error on stream 0.
   */
  credit(stream: FlowWindow | undefined, streamId: number, increment: number): void;
  /**
   * A DATA frame of `n` bytes (its whole payload length, padding included)
   * came on `streamId`; `stream` undefined when that stream is closed or
   * unknown (the connection window still counts it: release it at once).
   * Over the connection window: connection FLOW_CONTROL_ERROR; over the
   * stream's: stream FLOW_CONTROL_ERROR, with the connection window already
   * charged (reset the stream and releaseConnection(n)).
   */
  received(stream: FlowWindow | undefined, streamId: number, n: number): void;
  /**
   * The reader is done with `n` received bytes of `stream` (padding counts as
   * done at once). Returns the increment to send now in a WINDOW_UPDATE for
   * the stream, or 0 while less than half the initial window is owed.
   */
  releaseStream(stream: FlowWindow, n: number): number;
  /** The same for the connection window: returns the stream-0 WINDOW_UPDATE increment to send, or 0. */
  releaseConnection(n: number): number;
  /**
   * The peer's SETTINGS_INITIAL_WINDOW_SIZE changed: every open stream's send
   * window moves by the difference (and may go negative). A window pushed past
   * 2^31 − 1 is a connection FLOW_CONTROL_ERROR.
   */
  setPeerInitialWindowSize(size: number, streams: Iterable<FlowWindow>): void;
  /** Our SETTINGS_INITIAL_WINDOW_SIZE took effect (the peer acked it): open streams' receive windows move by the difference. */
  setLocalInitialWindowSize(size: number, streams: Iterable<FlowWindow>): void;
}

/** Options of createFlowControl. */
export interface FlowControlOptions {
  /** The SETTINGS_INITIAL_WINDOW_SIZE we send: each stream's receive window. Default 65535. */
  initialWindowSize?: number;
  /** The connection receive window we open with a WINDOW_UPDATE at start. Default 1048576 (1 MiB). */
  connectionWindowSize?: number;
}

export function createFlowControl(options: FlowControlOptions = {}): FlowControl {
  let localInitial = options.initialWindowSize ?? defaultInitialWindowSize;
  const connectionTarget = options.connectionWindowSize ?? 1048576;
  if (connectionTarget < defaultInitialWindowSize || connectionTarget > maxWindowSize) {
    throw new RangeError(`connectionWindowSize ${connectionTarget} is outside 65535..2^31-1`);
  }
  let peerInitial = defaultInitialWindowSize;
  const connection: FlowWindow = { send: defaultInitialWindowSize, recv: connectionTarget, unacked: 0 };

  return {
    connection,
    initialConnectionIncrement: connectionTarget - defaultInitialWindowSize,
    openStream() {
      return { send: peerInitial, recv: localInitial, unacked: 0 };
    },
    sendable(stream) {
      return Math.max(0, Math.min(stream.send, connection.send));
    },
    sent(stream, n) {
      stream.send -= n;
      connection.send -= n;
    },
    credit(stream, streamId, increment) {
      const w = stream ?? connection;
      if (w.send + increment > maxWindowSize) {
        throw new H2Error(
          ErrorCode.FLOW_CONTROL_ERROR,
          stream ? streamId : 0,
          `WINDOW_UPDATE pushes the ${stream ? `stream ${streamId}` : "connection"} window past 2^31-1`,
        );
      }
      w.send += increment;
    },
    received(stream, streamId, n) {
      if (n > connection.recv) {
        throw new H2Error(
          ErrorCode.FLOW_CONTROL_ERROR,
          0,
          `DATA of ${n} bytes over the connection window of ${connection.recv}`,
        );
      }
      connection.recv -= n;
      if (stream) {
        if (n > stream.recv) {
          throw new H2Error(
            ErrorCode.FLOW_CONTROL_ERROR,
            streamId,
            `DATA of ${n} bytes over stream ${streamId}'s window of ${stream.recv}`,
          );
        }
        stream.recv -= n;
      }
    },
    releaseStream: (stream, n) => release(stream, n, localInitial),
    releaseConnection: (n) => release(connection, n, connectionTarget),
    setPeerInitialWindowSize(size, streams) {
      const delta = size - peerInitial;
      if (delta > 0) {
        for (const s of streams) {
          if (s.send + delta > maxWindowSize) {
            throw new H2Error(
              ErrorCode.FLOW_CONTROL_ERROR,
              0,
              "SETTINGS_INITIAL_WINDOW_SIZE pushes a stream window past 2^31-1",
            );
          }
        }
      }
      for (const s of streams) s.send += delta;
      peerInitial = size;
    },
    setLocalInitialWindowSize(size, streams) {
      const delta = size - localInitial;
      for (const s of streams) s.recv += delta;
      localInitial = size;
    },
  };
}

/** Counts `n` bytes done with; once half of `size` is owed, hands it all back (the WINDOW_UPDATE increment). */
function release(window: FlowWindow, n: number, size: number): number {
  window.unacked += n;
  if (window.unacked < size / 2) return 0;
  const increment = window.unacked;
  window.recv += increment;
  window.unacked = 0;
  return increment;
}
