/**
 * How long a publisher keeps the room broadcasts it published, for joins on other hosts whose
 * catch-up request is still on its way (the same bound as inside a host, primary/room-routes.ts):
 * a request comes one announcement, one SUBSCRIBE and one bus hop after its join.
 */
export const RETAIN_MS = 5_000;
/** ...and at most this many, and --max-channel-bytes of them (the oldest go first; counted in {@link HostRetention.dropped}). */
export const RETAIN_MAX = 50_000;

interface Kept {
  seq: number;
  /** `${nsp}\0${room}` */
  key: string;
  /** The envelope as published on the room's channel. */
  payload: Buffer;
  at: number;
}

/**
 * The publishing half of routing across hosts (host-routes.ts): a room broadcast goes to its
 * room's channel, which only hosts holding a member subscribe to, so this host cannot know who
 * missed it. It keeps every room broadcast it published for a few seconds and answers a catch-up
 * request (rooms, and the newest of its numbers the asking host had heard at the join) with those
 * numbered after it, of those rooms, in publishing order. The asker drops what it got directly.
 */
export class HostRetention {
  private readonly kept: Kept[] = [];
  private head = 0;
  private bytes = 0;
  /** Dropped (for count or bytes) before RETAIN_MS: a catch-up reaching back that far is short. */
  dropped = 0;

  constructor(private readonly maxBytes: number) {}

  keep(seq: number, key: string, payload: Buffer, now = Date.now()): void {
    this.kept.push({ seq, key, payload, at: now });
    this.bytes += payload.length;
    const cutoff = now - RETAIN_MS;
    while (this.head < this.kept.length) {
      const oldest = this.kept[this.head];
      const fresh = oldest.at >= cutoff;
      if (fresh && this.kept.length - this.head <= RETAIN_MAX && this.bytes <= this.maxBytes) break;
      if (fresh) this.dropped++;
      this.bytes -= oldest.payload.length;
      this.kept[this.head++] = undefined as unknown as Kept;
    }
    if (this.head > 1024 && this.head * 2 > this.kept.length) {
      this.kept.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Kept broadcasts numbered after `since`, of rooms `keys`, oldest first. */
  since(since: number, keys: Set<string>): Buffer[] {
    const found: Buffer[] = [];
    for (let i = this.kept.length - 1; i >= this.head; i--) {
      const entry = this.kept[i];
      if (entry.seq <= since) break;
      if (keys.has(entry.key)) found.push(entry.payload);
    }
    return found.reverse();
  }

  size(): number {
    return this.kept.length - this.head;
  }
}
