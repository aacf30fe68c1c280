import type { LimitHits } from "../../observability/limits";
import type { Logger } from "../../observability/logger";
import type { RedisTransport } from "./transport";

/**
 * Messages kept while Redis is unreachable, then published when it is back. Beyond this count (or
 * --max-channel-bytes of them) they are dropped and counted: a long outage must not grow memory
 * without bound.
 */
export const OUTBOX_LIMIT = 1_000;

interface Queued {
  channel: string;
  payload: Buffer;
  onReceivers?: (n: number) => void;
}

/**
 * A bridge's PUBLISHes: sent at once while the publishing connection is up and nothing waits
 * before them, kept in order (bounded) while it is down, and published when it is back.
 */
export class Outbox {
  /** PUBLISH calls made. */
  published = 0;
  /** Messages dropped: outbox full, or a PUBLISH that failed. */
  dropped = 0;
  private readonly queued: Queued[] = [];
  private bytes = 0;

  constructor(
    private readonly redis: Pick<RedisTransport, "publish">,
    private readonly pubUp: () => boolean,
    private readonly maxBytes: number,
    private readonly limits: LimitHits,
    private readonly log: Logger,
  ) {}

  /** Messages waiting for Redis. */
  get length(): number {
    return this.queued.length;
  }

  /** `onReceivers`: PUBLISH's reply, the subscribers it reached. */
  send(channel: string, payload: Buffer, onReceivers?: (n: number) => void): void {
    if (this.pubUp() && this.queued.length === 0) return this.publishNow(channel, payload, onReceivers);
    if (this.queued.length >= OUTBOX_LIMIT || this.bytes + payload.length > this.maxBytes) {
      this.dropped++;
      this.limits.hit(
        "max-channel-bytes",
        { queue: "redis-outbox", dropped: this.dropped, messages: this.queued.length, bytes: this.bytes, maxMessages: OUTBOX_LIMIT, maxBytes: this.maxBytes },
        "redis unreachable and outbox full: dropping cross-host messages",
      );
      return;
    }
    this.queued.push({ channel, payload, onReceivers });
    this.bytes += payload.length;
  }

  /** Publishes past the queue (a heartbeat: worthless once stale, so never kept). */
  publishNow(channel: string, payload: Buffer, onReceivers?: (n: number) => void): void {
    this.published++;
    // No retry on failure: the message may already have been delivered, and a retry would duplicate it.
    this.redis.publish(channel, payload).then((n) => onReceivers?.(Number(n)), (err: unknown) => {
      this.dropped++;
      this.log.debug({ err }, "redis publish failed");
    });
  }

  /** The publishing connection is back: publishes what waited, in order. */
  flush(): void {
    const pending = this.queued.splice(0);
    this.bytes = 0;
    if (pending.length > 0) this.log.info({ messages: pending.length }, "redis back: publishing queued messages");
    for (const { channel, payload, onReceivers } of pending) this.publishNow(channel, payload, onReceivers);
  }
}
