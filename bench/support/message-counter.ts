/**
 * Counts the gRPC messages of a response body as its chunks arrive, by their
 * 5-byte envelope prefixes (flags, uint32 length), without copying or decoding
 * them. A prefix or a message may straddle chunks. One per call.
 */
export class MessageCounter {
  /** Messages received whole so far. */
  count = 0;
  // Prefix bytes still to read (5 at a message start), the length read so
  // far, and message bytes still to come.
  private prefixLeft = 5;
  private length = 0;
  private messageLeft = 0;

  push(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.messageLeft > 0) {
        const take = Math.min(this.messageLeft, n - i);
        this.messageLeft -= take;
        i += take;
        if (this.messageLeft === 0) this.count++;
        continue;
      }
      // Byte 0 of the prefix is the flags; bytes 1-4 the big-endian length.
      if (this.prefixLeft < 5) this.length = this.length * 256 + chunk[i]!;
      this.prefixLeft--;
      i++;
      if (this.prefixLeft === 0) {
        this.messageLeft = this.length;
        if (this.length === 0) this.count++;
        this.prefixLeft = 5;
        this.length = 0;
      }
    }
  }
}
