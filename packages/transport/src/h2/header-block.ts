import { ErrorCode, H2Error } from "./h2-error.js";

/**
 * Joins a header block split over HEADERS + CONTINUATION frames (RFC 9113
 * section 4.3), with the limits that defend against CONTINUATION floods: a
 * total block size and a number of CONTINUATION frames. A block that ends in
 * its HEADERS frame never comes here (the reader hands the fragment out as
 * it is); a split one is copied once, when it completes.
 */
export interface HeaderBlockAssembler {
  /** The stream whose block is being assembled, or 0 when none is. */
  readonly streamId: number;
  /** The HEADERS frame's flags (END_STREAM, PRIORITY...) of the block being assembled. */
  readonly flags: number;
  /** A HEADERS frame without END_HEADERS began a block. */
  begin(streamId: number, flags: number, fragment: Buffer): void;
  /** A CONTINUATION frame; returns the whole block once `endHeaders`, else undefined. */
  append(streamId: number, fragment: Buffer, endHeaders: boolean): Buffer | undefined;
}

/** Options of createHeaderBlockAssembler. */
export interface HeaderBlockAssemblerOptions {
  /** Largest header block in bytes (HPACK-coded, all fragments); past it, ENHANCE_YOUR_CALM. Default 65536. */
  maxBlockSize?: number;
  /** Most CONTINUATION frames in one block (empty ones count too); past it, ENHANCE_YOUR_CALM. Default 32. */
  maxContinuations?: number;
}

export function createHeaderBlockAssembler(options: HeaderBlockAssemblerOptions = {}): HeaderBlockAssembler {
  const maxBlockSize = options.maxBlockSize ?? 65536;
  const maxContinuations = options.maxContinuations ?? 32;
  const fragments: Buffer[] = [];
  let size = 0;
  let continuations = 0;

  function tooLarge(what: string): never {
    // The block cannot be decoded without all of it, and without decoding it
    // the HPACK tables fall out of step: only the connection can end here.
    throw new H2Error(ErrorCode.ENHANCE_YOUR_CALM, 0, what);
  }

  const assembler: HeaderBlockAssembler & { streamId: number; flags: number } = {
    streamId: 0,
    flags: 0,
    begin(streamId, flags, fragment) {
      if (fragment.length > maxBlockSize) tooLarge(`header block over ${maxBlockSize} bytes`);
      assembler.streamId = streamId;
      assembler.flags = flags;
      fragments.length = 0;
      fragments.push(fragment);
      size = fragment.length;
      continuations = 0;
    },
    append(streamId, fragment, endHeaders) {
      if (assembler.streamId === 0) {
        throw new H2Error(ErrorCode.PROTOCOL_ERROR, 0, "CONTINUATION without a HEADERS frame before it");
      }
      if (streamId !== assembler.streamId) {
        throw new H2Error(
          ErrorCode.PROTOCOL_ERROR,
          0,
          `CONTINUATION on stream ${streamId} inside the header block of stream ${assembler.streamId}`,
        );
      }
      size += fragment.length;
      if (size > maxBlockSize) tooLarge(`header block over ${maxBlockSize} bytes`);
      if (++continuations > maxContinuations)
        tooLarge(`header block in more than ${maxContinuations} CONTINUATION frames`);
      fragments.push(fragment);
      if (!endHeaders) return undefined;
      const block = Buffer.concat(fragments, size);
      fragments.length = 0;
      assembler.streamId = 0;
      return block;
    },
  };
  return assembler;
}
