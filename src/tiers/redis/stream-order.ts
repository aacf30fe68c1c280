import { decode, encode } from "notepack.io";
import type { Logger } from "../../observability/logger";
import { argsFromEntry } from "../recovery/encoded";
import { compareStreamIds } from "../recovery/offsets";
import type { AppendOptions, EncodedArgs } from "../recovery/replay-log";
import { ADAPTER_SOURCE, type AdapterMessage, type BroadcastOrigin } from "../cluster/relay";
import { FeedLogReader, type RawEntry } from "./feed-reader";
import { XReadLogReader, type LogReader } from "./log-reader";
import { RecentTail, ShareQueue } from "./share-queue";
import type { RedisTransport } from "./transport";

/**
 * A broadcast sent to the shared log and not read back within this is delivered on this host
 * alone (Redis lost it, or the reader is stuck): a broadcast must never wait on Redis for long.
 */
export const READ_BACK_TIMEOUT_MS = 2_000;
/** Tokens remembered per other bridge: covers a queue's worth of entries appended twice, and then some. */
const SEEN_TOKENS_LIMIT = 20_000;

/** What this host does with a broadcast once its place in the fleet's order is known. */
export interface OrderedDelivery {
  /** Deliver to this host's workers (the origin gets its offset); returns nothing. */
  deliver(message: AdapterMessage, origin: BroadcastOrigin | undefined, options: AppendOptions): void;
  /** Log only: this host delivered it already, on its own, while Redis was unreachable. */
  record(message: AdapterMessage, streamId: string, args: EncodedArgs): void;
  /** The log follows the shared log from this id on. */
  follow(streamId: string): void;
  /** The log's order broke at this id (see {@link RecoveryStore.orderBroke}). */
  orderBroke(streamId: string): void;
  /**
   * Log an entry this host did not read live (log-routes.ts) at its place; returns the offset to
   * deliver it with, undefined when the log had it live already (workers got it by routing).
   */
  late(message: AdapterMessage, streamId: string, args: EncodedArgs, localOffset: boolean): string | undefined;
  /** This host's broadcast went to a room channel it does not read: its origin delivers it to nobody. */
  away(origin: BroadcastOrigin): void;
}

/** Where an entry goes besides the stream: a room's channel (log-routes.ts), or the feed (undefined). */
export interface EntryRouter {
  route(message: AdapterMessage): { channel: string; readBack: boolean } | undefined;
}

/** Own entries routed away are remembered this long, in case a join brings them back. */
const AWAY_MS = 10_000;

export interface StreamOrderStats {
  appended: number;
  read: number;
  /** Broadcasts delivered on this host alone (Redis unreachable or too slow). */
  deliveredAlone: number;
  /** Of those, dropped before they could be shared (queue full). */
  dropped: number;
}

/** How many bytes the queue of broadcasts delivered alone may hold, and who hears of a drop. */
export interface QueueBound {
  maxBytes: number;
  onDrop(details: Record<string, unknown>): void;
}

interface Pending {
  message: AdapterMessage;
  /** Its shared-log entry, encoded once (see {@link encodeEntry}). */
  encoded: Buffer;
  /** Its arguments as they arrived from the worker, for the replay log. */
  args?: EncodedArgs;
  origin: BroadcastOrigin;
  sentAt: number;
  /** Its stream id, once XADD answered. */
  id?: string;
}

/**
 * The fleet's single order of recoverable broadcasts: a Redis stream. Every host appends its
 * workers' recoverable broadcasts (one XADD each) and delivers every entry, its own included, in
 * stream order as it reads them back (log-reader.ts: a pub/sub feed on one Redis node, a blocking
 * XREAD loop on Redis Cluster). All hosts therefore
 * deliver recoverable broadcasts in one order, and a stream id is an offset every host
 * understands: a client that comes back on another host resumes from that host's log.
 *
 * When Redis is unreachable a broadcast is delivered on this host alone, with a host-local offset,
 * and queued to be appended later (others receive it late rather than never). Until this host has
 * seen every such broadcast come back through the stream (a marker entry appended after them
 * says so) it keeps handing out local offsets: its clients hold broadcasts whose stream position
 * is later than what a stream id would claim.
 */
export class StreamOrder {
  private token = 0;
  private readonly pending = new Map<number, Pending>();
  /** Tokens delivered alone, whose entry may still come back through the stream. */
  private readonly aloneTokens = new Set<number>();
  /** Delivered alone (or to append again), to share once Redis is back. */
  private readonly queue: ShareQueue;
  /** Own broadcasts recently read back, with their ids: appended again after a Redis restart. */
  private readonly recent: RecentTail;
  /** Per other bridge, the newest id of its broadcasts this host has read (originals' ids for ones appended again). */
  private readonly lastFrom = new Map<string, string>();
  /** Where this reader started following the log. */
  private floor?: string;
  /** Appending the queue now (the marker waits for it). */
  private flushing = false;
  /** When the publishing connection went down (undefined while it is up). */
  private downAt?: number;
  /** Delivered alone since the last marker: offsets stay local until a marker comes back. */
  private tainted = false;
  private needMarker = false;
  private markerToken?: number;
  private readerUp = false;
  private readonly watchdog: NodeJS.Timeout;
  private readonly stats: StreamOrderStats = { appended: 0, read: 0, deliveredAlone: 0, dropped: 0 };
  private readonly reader: LogReader;
  private readonly waiters: Array<{ id: string; resolve: () => void }> = [];
  /** Recent tokens read from each other bridge, to skip entries appended twice. */
  private readonly seenTokens = new Map<string, Set<number>>();
  private router?: EntryRouter;
  /** Own entries routed to a room channel this host did not read (token -> when): delivered if they come back live. */
  private readonly away = new Map<number, number>();

  constructor(
    key: string,
    private readonly bridgeId: string,
    private readonly maxLength: number,
    private readonly bound: QueueBound,
    redis: RedisTransport,
    /** The feed and this host's sync channel on one Redis node (see {@link FeedLogReader}); undefined: a blocking XREAD loop. */
    feed: { channel: string; sync: string } | undefined,
    private readonly pubUp: () => boolean,
    private readonly delivery: OrderedDelivery,
    private readonly log: Logger,
  ) {
    this.queue = new ShareQueue(bound.maxBytes);
    this.recent = new RecentTail(bound.maxBytes);
    this.watchdog = setInterval(() => this.expirePending(), READ_BACK_TIMEOUT_MS / 4);
    this.watchdog.unref();
    const sink = {
      follow: (id: string) => {
        this.floor = id;
        this.delivery.follow(id);
      },
      entry: (id: string, fields: Buffer[]) => this.onEntry(id, fields),
      advanced: () => this.releaseWaiters(),
      readable: (up: boolean) => this.setReaderUp(up),
    };
    this.reader = feed === undefined ? new XReadLogReader(key, redis, sink, log) : new FeedLogReader(key, feed.channel, feed.sync, redis, sink, log);
  }

  /** The feed reader (one Redis node), for room routing (log-routes.ts). */
  feedReader(): FeedLogReader | undefined {
    return this.reader instanceof FeedLogReader ? this.reader : undefined;
  }

  /** Routes broadcasts to single rooms to their channels (one Redis node: log-routes.ts). */
  setRouter(router: EntryRouter): void {
    this.router = router;
  }

  counters(): Readonly<StreamOrderStats & { pending: number; queued: number; inStep: boolean }> {
    return { ...this.stats, pending: this.pending.size, queued: this.queue.length, inStep: !this.tainted };
  }

  /** Id of the newest shared-log entry read (undefined before the reader started): see redis-headroom.ts. */
  readPosition(): string | undefined {
    return this.reader.position();
  }

  /** A side of the transport the reader uses changed state. */
  transportSide(side: "reader" | "sub", up: boolean): void {
    this.reader.side(side, up);
  }

  /** Whether what is appended now will be read back. */
  private setReaderUp(up: boolean): void {
    this.readerUp = up;
    if (!up) this.settleAllPending();
    this.catchUp();
  }

  /** The publishing connection is down: what waits to come back is delivered alone. */
  onPubDown(): void {
    this.downAt ??= Date.now();
    this.settleAllPending();
  }

  /**
   * The publishing connection came back. Redis may have restarted and lost the newest entries
   * before every host read them: the recent tail of this host's broadcasts is appended again
   * (readers that have them skip them), ahead of what was delivered alone meanwhile.
   */
  onPubUp(): void {
    if (this.downAt !== undefined) {
      this.queue.unshift(this.recent.before(this.downAt));
      this.downAt = undefined;
    }
    this.catchUp();
  }

  /** Orders a recoverable broadcast from a local worker. */
  order(message: AdapterMessage, origin: BroadcastOrigin, args?: EncodedArgs): void {
    if (!this.canAppend() || this.queue.length > 0) {
      // Whatever still waits to come back goes first: this host's order is the order of calls.
      this.settleAllPending();
      return this.deliverAlone(message, origin, args);
    }
    const token = ++this.token;
    const entry: Pending = { message, encoded: encodeEntry(message), args, origin, sentAt: Date.now() };
    this.pending.set(token, entry);
    const route = this.router?.route(message);
    this.append(token, entry.encoded, false, undefined, route?.channel).then((id) => {
      entry.id = id;
      // Routed to a room this host does not read: it will not come back (unless a join brings it).
      if (route && !route.readBack && this.pending.delete(token)) this.sentAway(token, entry.origin);
    }, () => {
      // Unknown whether Redis appended it: deliver it now (and every later one, which must not
      // overtake it), and treat it as a copy if it comes back.
      if (this.pending.has(token)) this.settleAllPending();
    });
  }

  /**
   * Resolves true once this host has read the shared log up to `streamId` (a client arriving from
   * a host that read further), false after `timeoutMs`.
   */
  readUpTo(streamId: string, timeoutMs: number): Promise<boolean> {
    if (this.hasRead(streamId)) return Promise.resolve(true);
    const feed = this.feedReader();
    // With room routing this host may not read the entry the client got last: a scan's marker
    // tells when it has read all it reads up to the stream's end.
    if (feed) return feed.scan(undefined, []).then(() => this.hasRead(streamId), () => this.hasRead(streamId));
    return new Promise((resolve) => {
      const waiter = { id: streamId, resolve: () => resolve(true) };
      this.waiters.push(waiter);
      setTimeout(() => {
        const index = this.waiters.indexOf(waiter);
        if (index === -1) return;
        this.waiters.splice(index, 1);
        resolve(this.hasRead(streamId));
      }, timeoutMs).unref();
    });
  }

  private hasRead(streamId: string): boolean {
    const position = this.reader.position();
    return position !== undefined && compareStreamIds(position, streamId) >= 0;
  }

  async close(): Promise<void> {
    clearInterval(this.watchdog);
    this.waiters.splice(0);
    await this.reader.close();
  }

  private canAppend(): boolean {
    return this.pubUp() && this.readerUp;
  }

  private async append(token: number, encoded: Buffer | undefined, again = false, original?: string, channel?: string): Promise<string> {
    const fields: Array<string | Buffer> = ["b", this.bridgeId, "t", String(token)];
    if (again) fields.push("r", "1");
    if (original !== undefined) fields.push("o", original);
    if (channel !== undefined) fields.push("c", channel);
    if (encoded) fields.push("m", encoded);
    else fields.push("k", "marker");
    const id = await this.reader.append(fields, this.maxLength, channel);
    this.stats.appended++;
    return id;
  }

  private deliverAlone(message: AdapterMessage, origin: BroadcastOrigin | undefined, args?: EncodedArgs): void {
    const token = ++this.token;
    this.markAlone();
    this.delivery.deliver(message, origin, { localOffset: true, encoded: args });
    this.share(token, encodeEntry(message));
  }

  /** Queues a broadcast delivered alone, to append it once Redis is back. */
  private share(token: number, encoded: Buffer, original?: string): void {
    if (!this.queue.push({ token, encoded, original })) {
      this.stats.dropped++;
      this.bound.onDrop({ dropped: this.stats.dropped, ...this.queue.describe() });
      return;
    }
    this.aloneTokens.add(token);
  }

  /**
   * A broadcast whose append failed or did not come back in time: delivered here now, and appended
   * again later, flagged so that a host that did read the first append skips the second.
   */
  private settleAlone(token: number, entry: Pending): void {
    this.pending.delete(token);
    this.aloneTokens.add(token); // its first append may still come back: a copy then
    this.markAlone();
    this.delivery.deliver(entry.message, entry.origin, { localOffset: true, encoded: entry.args });
    this.share(token, entry.encoded, entry.id);
  }

  private markAlone(): void {
    this.stats.deliveredAlone++;
    if (!this.tainted) this.log.warn("delivering broadcasts on this host alone until the shared log is back in step");
    this.tainted = true;
    this.needMarker = true;
  }

  /**
   * Pending broadcasts older than the timeout are delivered alone, and with them every later one
   * (they must not overtake it); all of them when Redis is unreachable.
   */
  private expirePending(): void {
    const first = this.pending.values().next().value;
    if (!this.canAppend() || (first && Date.now() - first.sentAt > READ_BACK_TIMEOUT_MS)) this.settleAllPending();
    this.catchUp();
  }

  /** Map order is token order: settles in the order the broadcasts were made. */
  private settleAllPending(): void {
    for (const [token, entry] of this.pending) this.settleAlone(token, entry);
  }

  /**
   * Appends what was delivered alone (in order, on one connection), then, once all of it is in, a
   * marker. A failed append (Redis dropped again) is retried by the watchdog with everything after
   * it: an entry that did get in twice is skipped by readers (same token, or same first id).
   */
  private catchUp(): void {
    if (!this.canAppend() || this.flushing) return;
    const queued = this.queue.take();
    if (queued.length === 0) return this.sendMarker();
    this.flushing = true;
    this.log.info({ messages: queued.length, dropped: this.stats.dropped }, "redis back: sharing broadcasts delivered on this host alone");
    void Promise.allSettled(queued.map(({ token, encoded, original }) => this.append(token, encoded, true, original))).then((results) => {
      this.flushing = false;
      const failed = results.findIndex((result) => result.status === "rejected");
      if (failed !== -1) this.queue.unshift(queued.slice(failed));
      else this.catchUp();
    });
  }

  private sendMarker(): void {
    if (!this.needMarker) return;
    this.needMarker = false;
    const token = ++this.token;
    this.markerToken = token;
    this.append(token, undefined).catch(() => (this.needMarker = true));
  }

  private onEntry(id: string, raw: Buffer[]): void {
    this.stats.read++;
    const fields = new Map<string, Buffer>();
    for (let i = 0; i + 1 < raw.length; i += 2) fields.set(raw[i].toString(), raw[i + 1]);
    const token = Number(fields.get("t")?.toString());
    const own = fields.get("b")?.toString() === this.bridgeId;
    if (fields.has("k")) {
      if (own && token === this.markerToken) this.onMarker(token);
      return;
    }
    const original = fields.get("o")?.toString();
    // An entry appended again with its first id: the log's order broke there (Redis lost entries
    // some hosts had read and others had not), so no client offset from before it crosses hosts.
    if (original !== undefined) this.delivery.orderBroke(id);
    if (own) {
      const entry = this.pending.get(token);
      if (entry) {
        this.pending.delete(token);
        this.recent.remember({ token, encoded: entry.encoded, original: id });
        return this.delivery.deliver(entry.message, entry.origin, { streamId: id, localOffset: this.tainted, encoded: entry.args });
      }
      // Routed away, and a room channel this host reads now carried it after all: delivered as anyone's.
      if (this.away.delete(token)) {
        const message = this.decode(fields.get("m"));
        if (message) this.delivery.deliver(message, undefined, { streamId: id, localOffset: this.tainted, encoded: argsFromEntry(fields.get("m")!) });
        return;
      }
      // Delivered here already (alone, or before Redis restarted): logged for clients from elsewhere.
      if (!this.aloneTokens.delete(token) && original === undefined) return;
      const message = this.decode(fields.get("m"));
      if (message) this.delivery.record(message, id, argsFromEntry(fields.get("m")!));
      return;
    }
    const bridge = fields.get("b")?.toString() ?? "";
    const message = this.decode(fields.get("m"));
    if (!message) return;
    if (original !== undefined) {
      const seen = this.lastFrom.get(bridge) ?? this.floor;
      if (seen !== undefined && compareStreamIds(original, seen) <= 0) return this.delivery.record(message, id, argsFromEntry(fields.get("m")!));
      this.lastFrom.set(bridge, original);
    } else {
      if (this.seenBefore(bridge, token, fields.has("r"))) return;
      if (!fields.has("r")) this.lastFrom.set(bridge, id);
    }
    this.delivery.deliver(message, undefined, { streamId: id, localOffset: this.tainted, encoded: argsFromEntry(fields.get("m")!) });
  }

  /**
   * Whether this entry repeats one already read: only an entry appended again (flag "r") can. Each
   * bridge's recent tokens are remembered, a bounded number.
   */
  private seenBefore(bridge: string, token: number, again: boolean): boolean {
    let tokens = this.seenTokens.get(bridge);
    if (!tokens) this.seenTokens.set(bridge, (tokens = new Set()));
    if (again && tokens.has(token)) return true;
    tokens.add(token);
    if (tokens.size > SEEN_TOKENS_LIMIT) tokens.delete(tokens.values().next().value!);
    return false;
  }

  /**
   * Appends on one connection keep their order, so everything delivered alone before the marker
   * that reached the stream has been read by now; what has not will never come (Redis lost it).
   */
  private onMarker(token: number): void {
    for (const alone of this.aloneTokens) if (alone < token) this.aloneTokens.delete(alone);
    if (this.needMarker || !this.tainted) return;
    this.tainted = false;
    this.log.info("shared log back in step: handing out stream offsets again");
  }

  /**
   * An entry of a room just joined or taken over that this host did not read live (log-routes.ts):
   * logged at its place. Returns it with its offset, for the joining worker; undefined when this
   * host had it live (or it is no broadcast).
   */
  late([id, raw]: RawEntry): AdapterMessage | undefined {
    const fields = new Map<string, Buffer>();
    for (let i = 0; i + 1 < raw.length; i += 2) fields.set(raw[i].toString(), raw[i + 1]);
    const bytes = fields.get("m");
    const message = this.decode(bytes);
    if (!message) return undefined;
    if (fields.get("b")?.toString() === this.bridgeId) this.away.delete(Number(fields.get("t")?.toString()));
    const offset = this.delivery.late(message, id, argsFromEntry(bytes!), this.tainted);
    if (offset === undefined) return undefined;
    message.offset = offset;
    return message;
  }

  /** Own entry `token` went to a room channel this host does not read. */
  private sentAway(token: number, origin: BroadcastOrigin): void {
    const now = Date.now();
    this.away.set(token, now);
    // Map order is insertion order: the oldest go first.
    for (const [old, at] of this.away) {
      if (now - at <= AWAY_MS) break;
      this.away.delete(old);
    }
    this.delivery.away(origin);
  }

  private decode(raw: Buffer | undefined): AdapterMessage | undefined {
    if (!raw) return undefined;
    try {
      const message = decode(raw) as AdapterMessage;
      return { ...message, source: ADAPTER_SOURCE };
    } catch (err) {
      this.log.warn({ err }, "undecodable entry in the shared log");
      return undefined;
    }
  }

  private releaseWaiters(): void {
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.hasRead(this.waiters[i].id)) this.waiters.splice(i, 1)[0].resolve();
    }
  }
}

/** A broadcast as its shared-log entry carries it (field "m"). */
function encodeEntry(message: AdapterMessage): Buffer {
  return encode({ ...message, source: undefined, offset: undefined });
}
