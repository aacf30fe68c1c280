import type { Stamp } from "../../primary/room-routes";

/**
 * Values in the order of host-monotonic stamps, answering "which was newest at time T". Entries
 * older than `keepNs` are forgotten, except the newest of them: it still answers for older stamps
 * when a caller wants a safe floor (see {@link oldest}).
 */
export class StampedLog<V> {
  private stamps: Stamp[] = [];
  private values: V[] = [];
  private head = 0;

  constructor(private readonly keepNs: bigint) {}

  /** Appends `value` at `now` (stamps only grow). */
  push(value: V, now: Stamp): void {
    this.stamps.push(now);
    this.values.push(value);
    const cutoff = now - this.keepNs;
    while (this.head + 1 < this.stamps.length && this.stamps[this.head + 1] <= cutoff) this.head++;
    // Compact now and then rather than shift() per entry.
    if (this.head > 1024 && this.head * 2 > this.stamps.length) {
      this.stamps = this.stamps.slice(this.head);
      this.values = this.values.slice(this.head);
      this.head = 0;
    }
  }

  /** The stamp of the value pushed last, if any (no object built: asked once per log entry read). */
  newestStamp(): Stamp | undefined {
    return this.stamps.length > this.head ? this.stamps[this.stamps.length - 1] : undefined;
  }

  /** The value pushed last, if any. */
  newestValue(): V | undefined {
    return this.values.length > this.head ? this.values[this.values.length - 1] : undefined;
  }

  /** The oldest value kept. */
  oldest(): V | undefined {
    return this.head < this.values.length ? this.values[this.head] : undefined;
  }

  /** The newest value pushed at or before `stamp`; undefined when every kept one is newer. */
  at(stamp: Stamp): V | undefined {
    let lo = this.head;
    let hi = this.stamps.length - 1;
    let found: V | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.stamps[mid] <= stamp) {
        found = this.values[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}
