import { compareStreamIds } from "./offsets";

/** What the index needs of a replay-log entry. */
export interface Streamed {
  streamId?: string;
  /** Set once the replay log evicted it. */
  evicted?: boolean;
}

/**
 * The replay log's entries that went through the fleet's shared log, sorted by stream id: what a
 * client arriving from another host is replayed from. Entries mostly come in stream order (the
 * order this host reads them); a room's entries caught up after a first join or a takeover come
 * late, and are inserted at their place (near the end: a few milliseconds' worth).
 */
export class StreamIndex<E extends Streamed> {
  private readonly entries: E[] = [];
  private head = 0;
  /** The newest id evicted (entries leave the log in its order, not always in stream order). */
  evictedId?: string;

  /** Adds an entry (with a stream id) at its place. */
  add(entry: E): void {
    const id = entry.streamId!;
    const last = this.entries.length > this.head ? this.entries[this.entries.length - 1] : undefined;
    if (!last || compareStreamIds(last.streamId!, id) < 0) {
      this.entries.push(entry);
      return;
    }
    this.entries.splice(this.firstAfter(id), 0, entry);
  }

  /** The newest id held, if any. */
  newest(): string | undefined {
    return this.entries.length > this.head ? this.entries[this.entries.length - 1].streamId : undefined;
  }

  /** The entry with this id, if held. */
  find(id: string): E | undefined {
    const at = this.firstAfter(id) - 1;
    const entry = at >= this.head ? this.entries[at] : undefined;
    return entry && !entry.evicted && entry.streamId === id ? entry : undefined;
  }

  /** Entries after `id`, in stream order. */
  *after(id: string): Generator<E> {
    for (let i = this.firstAfter(id); i < this.entries.length; i++) if (!this.entries[i].evicted) yield this.entries[i];
  }

  /** The replay log evicted `entry` (flagged there already). */
  evicted(entry: E): void {
    if (this.evictedId === undefined || compareStreamIds(entry.streamId!, this.evictedId) > 0) this.evictedId = entry.streamId;
    while (this.head < this.entries.length && this.entries[this.head].evicted) this.head++;
    // Compact now and then rather than shift() per entry, which is O(n).
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Index of the first entry with an id above `id`. */
  private firstAfter(id: string): number {
    let low = this.head;
    let high = this.entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareStreamIds(this.entries[mid].streamId!, id) <= 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }
}
