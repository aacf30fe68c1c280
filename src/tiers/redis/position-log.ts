import type { Stamp } from "../../primary/room-routes";

/** How far back "where was the reader at time T" can be answered; older T answers undefined. */
const KEEP_NS = 10_000_000_000n;
/** At most one sample per this: an older sample answers for a later time, which is merely safe. */
const SAMPLE_NS = 1_000_000n;

/**
 * When this host's shared-log reader had reached which id (host-monotonic stamps, sampled). A
 * room's first join stamped T owes its member every entry appended after T, and each of those has
 * an id above where the reader stood at T: the catch-up after the join reads from there
 * (log-routes.ts).
 */
export class PositionLog {
  private stamps: Stamp[] = [];
  private ids: string[] = [];
  private head = 0;

  /** The reader reached `id` (ids only grow). */
  reached(id: string, now: Stamp = process.hrtime.bigint()): void {
    const last = this.stamps.length - 1;
    // Within the sampling step the older sample answers: an older id, so the answer stays on the safe side.
    if (last >= this.head && now - this.stamps[last] < SAMPLE_NS) return;
    this.stamps.push(now);
    this.ids.push(id);
    const cutoff = now - KEEP_NS;
    while (this.head + 1 < this.stamps.length && this.stamps[this.head + 1] <= cutoff) this.head++;
    if (this.head > 1024 && this.head * 2 > this.stamps.length) {
      this.stamps = this.stamps.slice(this.head);
      this.ids = this.ids.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * The id the reader had reached at `stamp` or a little before; the oldest id kept for an older
   * stamp (a join announced more than KEEP_NS late); undefined before the reader started.
   */
  at(stamp: Stamp): string | undefined {
    let lo = this.head;
    let hi = this.stamps.length - 1;
    let found = lo < this.ids.length ? this.ids[lo] : undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.stamps[mid] <= stamp) {
        found = this.ids[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}
