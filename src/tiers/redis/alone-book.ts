import type { Logger } from "../../observability/logger";
import { RecentTail, ShareQueue } from "./share-queue";

/** How many bytes the queue of broadcasts delivered alone may hold, and who hears of a drop. */
export interface QueueBound {
  maxBytes: number;
  onDrop(details: Record<string, unknown>): void;
}

/** How the book appends to the shared log (stream-order.ts). */
export interface BookAppender {
  nextToken(): number;
  canAppend(): boolean;
  /** `encoded` undefined: a marker. */
  append(token: number, encoded: Buffer | undefined, again: boolean, original?: string): Promise<string>;
}

/**
 * The broadcasts this host delivered alone (Redis unreachable, or an append not read back in
 * time), shared with the fleet once Redis is back, and whether the host is back in step with the
 * shared log. Until a marker appended after every one of them comes back through the stream, the
 * host hands out local offsets: its clients hold broadcasts whose stream position is later than a
 * stream id would claim.
 */
export class AloneBook {
  /** Tokens delivered alone, whose entry may still come back through the stream. */
  private readonly tokens = new Set<number>();
  private readonly queue: ShareQueue;
  /** Own broadcasts recently read back, with their ids: appended again after a Redis restart. */
  private readonly recent: RecentTail;
  /** Appending the queue now (the marker waits for it). */
  private flushing = false;
  /** When the publishing connection went down (undefined while it is up). */
  private downAt?: number;
  private tainted = false;
  private needMarker = false;
  private markerToken?: number;
  readonly counts = { deliveredAlone: 0, dropped: 0 };

  constructor(
    private readonly bound: QueueBound,
    private readonly appender: BookAppender,
    private readonly log: Logger,
  ) {
    this.queue = new ShareQueue(bound.maxBytes);
    this.recent = new RecentTail(bound.maxBytes);
  }

  /** Whether stream offsets may be handed out (every broadcast delivered alone is back in the stream). */
  get inStep(): boolean {
    return !this.tainted;
  }

  /** Broadcasts waiting to be shared: later ones must not overtake them. */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * `token` was delivered on this host alone: queued to be appended. `original`: the id of a
   * first append that may still come back (`mayComeBack`), which is then a copy.
   */
  deliveredAlone(token: number, encoded: Buffer, mayComeBack: boolean, original?: string): void {
    this.counts.deliveredAlone++;
    if (!this.tainted) this.log.warn("delivering broadcasts on this host alone until the shared log is back in step");
    this.tainted = true;
    this.needMarker = true;
    if (mayComeBack) this.tokens.add(token);
    if (!this.queue.push({ token, encoded, original })) {
      this.counts.dropped++;
      this.bound.onDrop({ dropped: this.counts.dropped, ...this.queue.describe() });
      return;
    }
    this.tokens.add(token);
  }

  /** Whether an own entry read back was delivered alone (forgotten then: it comes back once at most). */
  wasAlone(token: number): boolean {
    return this.tokens.delete(token);
  }

  /** An own broadcast read back: kept a while, to append again should Redis restart. */
  readBack(token: number, encoded: Buffer, id: string): void {
    this.recent.remember({ token, encoded, original: id });
  }

  pubDown(): void {
    this.downAt ??= Date.now();
  }

  /**
   * The publishing connection came back. Redis may have restarted and lost the newest entries
   * before every host read them: the recent tail of this host's broadcasts is appended again
   * (readers that have them skip them), ahead of what was delivered alone meanwhile.
   */
  pubUp(): void {
    if (this.downAt !== undefined) {
      this.queue.unshift(this.recent.before(this.downAt));
      this.downAt = undefined;
    }
  }

  /**
   * Appends what was delivered alone (in order, on one connection), then, once all of it is in, a
   * marker. A failed append (Redis dropped again) is retried by the next call with everything after
   * it: an entry that did get in twice is skipped by readers (same token, or same first id).
   */
  flush(): void {
    if (!this.appender.canAppend() || this.flushing) return;
    const queued = this.queue.take();
    if (queued.length === 0) return this.sendMarker();
    this.flushing = true;
    this.log.info({ messages: queued.length, dropped: this.counts.dropped }, "redis back: sharing broadcasts delivered on this host alone");
    void Promise.allSettled(queued.map(({ token, encoded, original }) => this.appender.append(token, encoded, true, original))).then((results) => {
      this.flushing = false;
      const failed = results.findIndex((result) => result.status === "rejected");
      if (failed !== -1) this.queue.unshift(queued.slice(failed));
      else this.flush();
    });
  }

  /**
   * An own marker read back. Appends on one connection keep their order, so everything delivered
   * alone before it that reached the stream has been read by now; what has not will never come
   * (Redis lost it).
   */
  marker(token: number): void {
    if (token !== this.markerToken) return;
    for (const alone of this.tokens) if (alone < token) this.tokens.delete(alone);
    if (this.needMarker || !this.tainted) return;
    this.tainted = false;
    this.log.info("shared log back in step: handing out stream offsets again");
  }

  private sendMarker(): void {
    if (!this.needMarker) return;
    this.needMarker = false;
    const token = this.appender.nextToken();
    this.markerToken = token;
    this.appender.append(token, undefined, false).catch(() => (this.needMarker = true));
  }
}
