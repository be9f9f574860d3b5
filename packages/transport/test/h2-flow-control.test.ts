import { describe, expect, it } from "vitest";
import { createFlowControl } from "../src/h2/flow-control.js";
import { ErrorCode, H2Error } from "../src/h2/h2-error.js";

const errorOf = (f: () => void): H2Error => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(H2Error);
    return e as H2Error;
  }
  throw new Error("no error");
};

describe("flow control", () => {
  it("sendable is the smaller of the stream's and the connection's send window; sending consumes both", () => {
    const flow = createFlowControl();
    const a = flow.openStream();
    const b = flow.openStream();
    expect(flow.sendable(a)).toBe(65535);
    flow.sent(a, 60000);
    expect(flow.sendable(a)).toBe(5535);
    expect(flow.sendable(b)).toBe(5535); // the connection window is shared
    flow.credit(undefined, 0, 100000);
    expect(flow.sendable(b)).toBe(65535);
    expect(flow.sendable(a)).toBe(5535);
    flow.credit(a, 1, 60000);
    expect(flow.sendable(a)).toBe(65535);
  });

  it("a WINDOW_UPDATE past 2^31-1 is FLOW_CONTROL_ERROR: stream error on a stream, connection error on stream 0", () => {
    const flow = createFlowControl();
    const s = flow.openStream();
    flow.credit(s, 1, 2 ** 31 - 1 - 65535); // exactly the maximum: fine
    const e = errorOf(() => flow.credit(s, 1, 1));
    expect([e.code, e.streamId]).toEqual([ErrorCode.FLOW_CONTROL_ERROR, 1]);
    const c = errorOf(() => flow.credit(undefined, 0, 2 ** 31 - 65535));
    expect([c.code, c.streamId]).toEqual([ErrorCode.FLOW_CONTROL_ERROR, 0]);
  });

  it("DATA over the stream window is a stream error, over the connection window a connection error", () => {
    const flow = createFlowControl({ initialWindowSize: 1000, connectionWindowSize: 65535 });
    const s = flow.openStream();
    flow.received(s, 1, 1000);
    const e = errorOf(() => flow.received(s, 1, 1));
    expect([e.code, e.streamId]).toEqual([ErrorCode.FLOW_CONTROL_ERROR, 1]);
    const t = flow.openStream();
    for (let i = 0; i < 64; i++) flow.received(undefined, 3, 1000); // a closed stream's DATA still counts
    const c = errorOf(() => flow.received(t, 5, 1000));
    expect([c.code, c.streamId]).toEqual([ErrorCode.FLOW_CONTROL_ERROR, 0]);
  });

  it("WINDOW_UPDATE once half the window was consumed, returning exactly what was released", () => {
    const flow = createFlowControl({ initialWindowSize: 65535, connectionWindowSize: 1 << 20 });
    expect(flow.initialConnectionIncrement).toBe((1 << 20) - 65535);
    const s = flow.openStream();
    flow.received(s, 1, 16384);
    expect(flow.releaseStream(s, 16384)).toBe(0);
    expect(flow.releaseConnection(16384)).toBe(0);
    flow.received(s, 1, 16384);
    expect(flow.releaseStream(s, 16384)).toBe(32768); // 32768 >= 65535/2
    expect(s.recv).toBe(65535);
    const increments: number[] = [];
    for (let i = 0; i < 40; i++) {
      flow.received(s, 1, 16384);
      const inc = flow.releaseConnection(16384);
      if (inc) increments.push(inc);
      flow.releaseStream(s, 16384);
    }
    // One update when half of the 1 MiB window is owed (the second 16 KiB above was never released).
    expect(increments).toEqual([32 * 16384]);
    // Whatever is not released stays consumed: the peer may send exactly the rest.
    expect(flow.connection.recv + flow.connection.unacked).toBe((1 << 20) - 16384);
  });

  it("a new SETTINGS_INITIAL_WINDOW_SIZE from the peer moves open streams' send windows, below zero too", () => {
    const flow = createFlowControl();
    const a = flow.openStream();
    const b = flow.openStream();
    flow.sent(a, 60000);
    flow.setPeerInitialWindowSize(16384, [a, b]);
    expect(a.send).toBe(65535 - 60000 - (65535 - 16384)); // negative
    expect(a.send).toBeLessThan(0);
    expect(flow.sendable(a)).toBe(0);
    expect(b.send).toBe(16384);
    expect(flow.openStream().send).toBe(16384);
    flow.credit(a, 1, 50000);
    expect(a.send).toBe(65535 - 60000 - (65535 - 16384) + 50000);
    // Raising it so far that a window passes 2^31-1 is a connection error.
    flow.credit(b, 3, 2 ** 31 - 1 - 16384);
    const e = errorOf(() => flow.setPeerInitialWindowSize(16385, [a, b]));
    expect([e.code, e.streamId]).toEqual([ErrorCode.FLOW_CONTROL_ERROR, 0]);
  });

  it("our own SETTINGS_INITIAL_WINDOW_SIZE, once acked, moves open streams' receive windows", () => {
    const flow = createFlowControl();
    const s = flow.openStream();
    flow.received(s, 1, 10000);
    flow.setLocalInitialWindowSize(1 << 20, [s]);
    expect(s.recv).toBe((1 << 20) - 10000);
    expect(flow.openStream().recv).toBe(1 << 20);
  });
});
