/**
 * Broadcasts delivered here while Redis was unreachable, kept to be shared once it is back (and
 * at most --max-channel-bytes of them, encoded).
 */
export const LOCAL_QUEUE_LIMIT = 1_000;
/**
 * This host's own broadcasts read back within this long before Redis went away are appended again
 * when it is back: a Redis that restarted lost the ones other hosts had not read yet.
 */
const TAIL_MS = 2_000;
const TAIL_LIMIT = 2_000;

/** A broadcast to append (again): delivered alone, or re-shared after Redis came back. */
export interface Queued {
  token: number;
  /** The shared-log entry, encoded: what the queue holds, byte for byte. */
  encoded: Buffer;
  /** The id of its first append, when known: readers that read that one skip this one. */
  original?: string;
}

/** What waits to be appended to the shared log, in order, bounded by count and bytes. */
export class ShareQueue {
  private items: Queued[] = [];
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get length(): number {
    return this.items.length;
  }

  /** Appends at the tail; false (nothing kept) when that would pass either bound. */
  push(item: Queued): boolean {
    if (this.items.length >= LOCAL_QUEUE_LIMIT || this.bytes + item.encoded.length > this.maxBytes) return false;
    this.items.push(item);
    this.bytes += item.encoded.length;
    return true;
  }

  /** Puts entries back at the head (to be appended before what it holds), bounds or not: they were held before. */
  unshift(entries: Queued[]): void {
    this.items.unshift(...entries);
    for (const entry of entries) this.bytes += entry.encoded.length;
  }

  /** Everything held, in order, leaving the queue empty. */
  take(): Queued[] {
    const items = this.items;
    this.items = [];
    this.bytes = 0;
    return items;
  }

  /** What a drop report says about the queue. */
  describe(): { messages: number; bytes: number; maxMessages: number; maxBytes: number } {
    return { messages: this.items.length, bytes: this.bytes, maxMessages: LOCAL_QUEUE_LIMIT, maxBytes: this.maxBytes };
  }
}

/**
 * This host's own broadcasts read back lately, bounded like the queue it refills (by count, age and
 * bytes): beyond that, a Redis restart may lose entries other hosts had not read, as it would
 * without this tail.
 */
export class RecentTail {
  private readonly entries: Array<Queued & { at: number }> = [];
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  remember(entry: Queued, now = Date.now()): void {
    this.entries.push({ ...entry, at: now });
    this.bytes += entry.encoded.length;
    while (this.entries.length > TAIL_LIMIT || (this.entries.length > 0 && (this.entries[0].at < now - TAIL_MS || this.bytes > this.maxBytes))) {
      this.bytes -= this.entries.shift()!.encoded.length;
    }
  }

  /** The broadcasts read back within the tail's span before `at`, oldest first. */
  before(at: number): Queued[] {
    const since = at - TAIL_MS;
    return this.entries.filter((entry) => entry.at >= since).map(({ token, encoded, original }) => ({ token, encoded, original }));
  }
}
