/** Counts the HTTP/2 frames a client sends, from the raw bytes of its connections. */
export interface H2FrameCounter {
  /** A parser for one connection's client-to-server bytes. */
  connection(): (chunk: Buffer) => void;
  /** DATA frames seen, split by whether they carried END_STREAM. */
  data(): { withEnd: number; withoutEnd: number };
  /** HEADERS frames seen. */
  headers(): number;
}

const prefaceLength = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
const DATA = 0x0;
const HEADERS = 0x1;
const END_STREAM = 0x1;

export function createH2FrameCounter(): H2FrameCounter {
  let withEnd = 0;
  let withoutEnd = 0;
  let headers = 0;
  return {
    connection() {
      let buffered = Buffer.alloc(0);
      let skipped = 0;
      return (chunk) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (skipped < prefaceLength) {
          const skip = Math.min(prefaceLength - skipped, buffered.length);
          buffered = buffered.subarray(skip);
          skipped += skip;
        }
        while (buffered.length >= 9) {
          const length = buffered.readUIntBE(0, 3);
          if (buffered.length < 9 + length) break;
          const type = buffered[3];
          const flags = buffered[4]!;
          if (type === DATA) {
            if (flags & END_STREAM) withEnd++;
            else withoutEnd++;
          } else if (type === HEADERS) {
            headers++;
          }
          buffered = buffered.subarray(9 + length);
        }
      };
    },
    data: () => ({ withEnd, withoutEnd }),
    headers: () => headers,
  };
}
