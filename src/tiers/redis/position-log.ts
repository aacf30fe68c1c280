import type { Stamp } from "../../primary/room-routes";
import { StampedLog } from "./stamped-log";

/** How far back "where was the reader at time T" can be answered; older T answers the oldest id kept. */
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
  private readonly log = new StampedLog<string>(KEEP_NS);

  /** The reader reached `id` (ids only grow). */
  reached(id: string, now: Stamp = process.hrtime.bigint()): void {
    const newest = this.log.newestStamp();
    // Within the sampling step the older sample answers: an older id, so the answer stays on the safe side.
    if (newest !== undefined && now - newest < SAMPLE_NS) return;
    this.log.push(id, now);
  }

  /**
   * The id the reader had reached at `stamp` or a little before; the oldest id kept for an older
   * stamp (a join announced more than KEEP_NS late); undefined before the reader started.
   */
  at(stamp: Stamp): string | undefined {
    return this.log.at(stamp) ?? this.log.oldest();
  }
}
