import { decode, encode } from "notepack.io";
import type { Logger } from "../../observability/logger";
import { argsFromEntry } from "../recovery/encoded";
import { compareStreamIds } from "../recovery/offsets";
import type { AppendOptions, EncodedArgs } from "../recovery/replay-log";
import { ADAPTER_SOURCE, EMITTER_UID, type AdapterMessage, type BroadcastOrigin } from "../cluster/relay";
import { FeedLogReader, type RawEntry } from "./feed-reader";
import { AloneBook, type QueueBound } from "./alone-book";
import { RepeatFilter } from "./repeat-filter";
import type { RedisTransport } from "./transport";

/**
 * A broadcast sent to the shared log and not read back within this is delivered on this host
 * alone (Redis lost it, or the reader is stuck): a broadcast must never wait on Redis for long.
 */
export const READ_BACK_TIMEOUT_MS = 2_000;

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

export type { QueueBound };

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
 * workers' recoverable broadcasts (one XADD each) and delivers the entries it reads, its own
 * included, in stream order (feed-reader.ts: the script that appends an entry publishes it, a
 * broadcast to one room on that room's channel, read only by hosts with members: log-routes.ts;
 * on Redis Cluster those channels share the stream's slot). All hosts therefore deliver recoverable
 * broadcasts in one order, and a stream id is an offset every host understands: a client that
 * comes back on another host resumes from that host's log.
 *
 * When Redis is unreachable a broadcast is delivered on this host alone, with a host-local offset,
 * and queued to be appended later (others receive it late rather than never; alone-book.ts).
 */
export class StreamOrder {
  private token = 0;
  private readonly pending = new Map<number, Pending>();
  /** What was delivered alone, and whether offsets may be stream ids. */
  private readonly book: AloneBook;
  private readonly repeats = new RepeatFilter();
  private readerUp = false;
  private readonly watchdog: NodeJS.Timeout;
  private readonly stats = { appended: 0, read: 0 };
  private readonly reader: FeedLogReader;
  private router?: EntryRouter;
  /** Own entries routed to a room channel this host did not read (token -> when): delivered if they come back live. */
  private readonly away = new Map<number, number>();

  constructor(
    key: string,
    private readonly bridgeId: string,
    private readonly maxLength: number,
    bound: QueueBound,
    redis: RedisTransport,
    /** The feed, this host's sync channel and how the log's scripts publish (see {@link FeedLogReader}). */
    feed: { channel: string; sync: string; publish: "PUBLISH" | "SPUBLISH" },
    private readonly pubUp: () => boolean,
    private readonly delivery: OrderedDelivery,
    private readonly log: Logger,
  ) {
    this.book = new AloneBook(bound, {
      nextToken: () => ++this.token,
      canAppend: () => this.canAppend(),
      append: (token, encoded, again, original) => this.append(token, encoded, again, original),
    }, log);
    this.watchdog = setInterval(() => this.expirePending(), READ_BACK_TIMEOUT_MS / 4);
    this.watchdog.unref();
    const sink = {
      follow: (id: string) => {
        this.repeats.follow(id);
        this.delivery.follow(id);
      },
      entry: (id: string, fields: Buffer[]) => this.onEntry(id, fields),
      readable: (up: boolean) => this.setReaderUp(up),
    };
    this.reader = new FeedLogReader(key, feed.channel, feed.sync, feed.publish, redis, sink, log);
  }

  /** The log's reader, for room routing (log-routes.ts). */
  feedReader(): FeedLogReader {
    return this.reader;
  }

  /** Routes broadcasts to single rooms to their channels (one Redis node: log-routes.ts). */
  setRouter(router: EntryRouter): void {
    this.router = router;
  }

  counters(): Readonly<StreamOrderStats & { pending: number; queued: number; inStep: boolean }> {
    return { ...this.stats, ...this.book.counts, pending: this.pending.size, queued: this.book.queued, inStep: this.book.inStep };
  }

  /** Id of the newest shared-log entry read (undefined before the reader started): see redis-headroom.ts. */
  readPosition(): string | undefined {
    return this.reader.position();
  }

  /** The subscribing connection went down: the reader catches up once it is back. */
  onSubDown(): void {
    this.reader.subscriberDown();
  }

  /** Whether what is appended now will be read back. */
  private setReaderUp(up: boolean): void {
    this.readerUp = up;
    if (!up) this.settleAllPending();
    this.book.flush();
  }

  /** The publishing connection is down: what waits to come back is delivered alone. */
  onPubDown(): void {
    this.book.pubDown();
    this.settleAllPending();
  }

  /** The publishing connection came back (see {@link AloneBook.pubUp}). */
  onPubUp(): void {
    this.book.pubUp();
    this.book.flush();
  }

  /** Orders a recoverable broadcast from a local worker. */
  order(message: AdapterMessage, origin: BroadcastOrigin, args?: EncodedArgs): void {
    if (!this.canAppend() || this.book.queued > 0) {
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
   * a host that read further), false if it cannot tell (Redis unreachable for the scan's bound).
   * With room routing this host may never read the entry the client got last: a scan's marker
   * tells when it has read all it reads up to the stream's end.
   */
  async readUpTo(streamId: string): Promise<boolean> {
    if (this.hasRead(streamId)) return true;
    await this.reader.scan(undefined, []).catch(() => undefined);
    return this.hasRead(streamId);
  }

  private hasRead(streamId: string): boolean {
    const position = this.reader.position();
    return position !== undefined && compareStreamIds(position, streamId) >= 0;
  }

  async close(): Promise<void> {
    clearInterval(this.watchdog);
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
    this.book.deliveredAlone(token, encodeEntry(message), false);
    this.delivery.deliver(message, origin, { localOffset: true, encoded: args });
  }

  /**
   * A broadcast whose append failed or did not come back in time: delivered here now, and appended
   * again later, flagged so that a host that did read the first append skips the second.
   */
  private settleAlone(token: number, entry: Pending): void {
    this.pending.delete(token);
    this.book.deliveredAlone(token, entry.encoded, true, entry.id);
    this.delivery.deliver(entry.message, entry.origin, { localOffset: true, encoded: entry.args });
  }

  /**
   * Pending broadcasts older than the timeout are delivered alone, and with them every later one
   * (they must not overtake it); all of them when Redis is unreachable.
   */
  private expirePending(): void {
    const first = this.pending.values().next().value;
    if (!this.canAppend() || (first && Date.now() - first.sentAt > READ_BACK_TIMEOUT_MS)) this.settleAllPending();
    this.book.flush();
  }

  /** Map order is token order: settles in the order the broadcasts were made. */
  private settleAllPending(): void {
    for (const [token, entry] of this.pending) this.settleAlone(token, entry);
  }

  private onEntry(id: string, raw: Buffer[]): void {
    this.stats.read++;
    const fields = new Map<string, Buffer>();
    for (let i = 0; i + 1 < raw.length; i += 2) fields.set(raw[i].toString(), raw[i + 1]);
    const token = Number(fields.get("t")?.toString());
    const own = fields.get("b")?.toString() === this.bridgeId;
    if (fields.has("k")) {
      if (own) this.book.marker(token);
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
        this.book.readBack(token, entry.encoded, id);
        return this.delivery.deliver(entry.message, entry.origin, { streamId: id, localOffset: !this.book.inStep, encoded: entry.args });
      }
      // Routed away, and a room channel this host reads now carried it after all: delivered as anyone's.
      if (this.away.delete(token)) {
        const message = this.decode(fields.get("m"), true);
        if (message) this.delivery.deliver(message, undefined, { streamId: id, localOffset: !this.book.inStep, encoded: argsFromEntry(fields.get("m")!) });
        return;
      }
      // Delivered here already (alone, or before Redis restarted): logged for clients from elsewhere.
      if (!this.book.wasAlone(token) && original === undefined) return;
      const message = this.decode(fields.get("m"));
      if (message) this.delivery.record(message, id, argsFromEntry(fields.get("m")!));
      return;
    }
    const bridge = fields.get("b")?.toString() ?? "";
    const message = this.decode(fields.get("m"));
    if (!message) return;
    const verdict = this.repeats.verdict(bridge, id, token, fields.has("r"), original);
    if (verdict === "record") return this.delivery.record(message, id, argsFromEntry(fields.get("m")!));
    if (verdict === "deliver") this.delivery.deliver(message, undefined, { streamId: id, localOffset: !this.book.inStep, encoded: argsFromEntry(fields.get("m")!) });
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
    const own = fields.get("b")?.toString() === this.bridgeId;
    const message = this.decode(bytes, own);
    if (!message) return undefined;
    if (own) this.away.delete(Number(fields.get("t")?.toString()));
    const offset = this.delivery.late(message, id, argsFromEntry(bytes!), !this.book.inStep);
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

  /**
   * The entry's broadcast, as workers take it. `ownUnsent`: this host's own, which its origin worker
   * did not deliver (routed away): it comes back under the emitter's uid, as the worker's adapter
   * ignores messages carrying its own.
   */
  private decode(raw: Buffer | undefined, ownUnsent = false): AdapterMessage | undefined {
    if (!raw) return undefined;
    try {
      const message = decode(raw) as AdapterMessage;
      return { ...message, source: ADAPTER_SOURCE, ...(ownUnsent ? { uid: EMITTER_UID } : {}) };
    } catch (err) {
      this.log.warn({ err }, "undecodable entry in the shared log");
      return undefined;
    }
  }
}

/** A broadcast as its shared-log entry carries it (field "m"). */
function encodeEntry(message: AdapterMessage): Buffer {
  return encode({ ...message, source: undefined, offset: undefined });
}
