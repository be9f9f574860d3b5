import { createFrameReader } from "./h2-frames.js";

/** Counts the HTTP/2 frames a client sends, from the raw bytes of its connections. */
export interface H2FrameCounter {
  /** A reader for one connection's client-to-server bytes. */
  connection(): (chunk: Buffer) => void;
  /** DATA frames seen, split by whether they carried END_STREAM. */
  data(): { withEnd: number; withoutEnd: number };
  /** HEADERS frames seen. */
  headers(): number;
}

const DATA = 0x0;
const HEADERS = 0x1;
const END_STREAM = 0x1;

export function createH2FrameCounter(): H2FrameCounter {
  let withEnd = 0;
  let withoutEnd = 0;
  let headers = 0;
  return {
    connection: () =>
      createFrameReader((type, flags) => {
        if (type === DATA) {
          if (flags & END_STREAM) withEnd++;
          else withoutEnd++;
        } else if (type === HEADERS) {
          headers++;
        }
      }),
    data: () => ({ withEnd, withoutEnd }),
    headers: () => headers,
  };
}
