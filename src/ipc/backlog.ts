/**
 * The frames written to a socket and not yet handed to the kernel, in order. What counts against a
 * channel's bound is what waits *behind* the frame being written: one large frame (a recovery
 * reply can be as large as the replay log) is no sign of a stalled peer, frames piling up behind
 * it are.
 */
export class Backlog {
  private readonly sizes: number[] = [];
  private head = 0;
  private total = 0;

  /** A frame of `size` bytes was written; call the returned function once it is flushed. */
  add(size: number): () => void {
    this.sizes.push(size);
    this.total += size;
    return this.flushed;
  }

  /** Bytes waiting behind the frame being written now. */
  behind(): number {
    return this.head < this.sizes.length ? this.total - this.sizes[this.head] : 0;
  }

  // Stream write callbacks run in write order: the oldest frame is the one flushed.
  private readonly flushed = (): void => {
    if (this.head >= this.sizes.length) return;
    this.total -= this.sizes[this.head++];
    if (this.head > 1024 && this.head * 2 > this.sizes.length) {
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
  };
}
