/** First 4 bytes of our PINGs' payload; the last 4 count them. */
const magic = 0x6d6c7069;

interface Ping {
  seq: number;
  sentAt: number;
  callback: (err: Error | null, durationMs: number) => void;
}

/** The client session's PINGs that wait for their ACK (ping()), matched by payload. */
export interface ClientPings {
  /** A payload for a new PING whose ACK calls `callback`; undefined when `max` wait already. */
  start(callback: (err: Error | null, durationMs: number) => void): Buffer | undefined;
  /** A PING ACK came: the callback of the PING it answers, with the round trip in ms; others are ignored. */
  acked(payload: Buffer): void;
  /** The session closed: every waiting PING's callback gets `error`. */
  failAll(error: Error): void;
}

export function createClientPings(max: number): ClientPings {
  let waiting: Ping[] = [];
  let seq = 0;
  return {
    start(callback) {
      if (waiting.length >= max) return undefined;
      seq = (seq + 1) >>> 0;
      const payload = Buffer.allocUnsafe(8);
      payload.writeUInt32BE(magic, 0);
      payload.writeUInt32BE(seq, 4);
      waiting.push({ seq, sentAt: performance.now(), callback });
      return payload;
    },
    acked(payload) {
      if (payload.readUInt32BE(0) !== magic) return;
      const n = payload.readUInt32BE(4);
      const i = waiting.findIndex((p) => p.seq === n);
      if (i < 0) return;
      const ping = waiting[i]!;
      waiting.splice(i, 1);
      ping.callback(null, performance.now() - ping.sentAt);
    },
    failAll(error) {
      const list = waiting;
      waiting = [];
      for (const p of list) p.callback(error, 0);
    },
  };
}
