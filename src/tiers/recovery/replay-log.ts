import { randomBytes } from "node:crypto";
import v8 from "node:v8";
import { compareStreamIds } from "./offsets";
import { StreamIndex } from "./stream-index";
import type { RecoveryLimits } from "./store";

/** The fields of a broadcast the replay log needs. */
export interface LoggedBroadcast {
  nsp: string;
  rooms: string[];
  except: string[];
  /**
   * The event's arguments (name first), without the offset; serialized here unless
   * {@link AppendOptions.encoded} brings them encoded already.
   */
  data?: unknown[];
}

/**
 * A broadcast's arguments as the log keeps them: bytes, decoded on replay only. The log's byte
 * bound counts these bytes, exactly what it retains whatever the payload's shape (decoded, a deeply
 * nested value costs many times its encoded size).
 */
export interface EncodedArgs {
  bytes: Buffer;
  /** Turns `bytes` back into the event's arguments (one function per encoding, shared). */
  decode: (bytes: Buffer) => unknown[];
}

/** Structured clone, as on the data channel: what the store uses for arguments given decoded. */
export function encodeArgs(data: unknown[]): EncodedArgs {
  return { bytes: v8.serialize(data), decode: v8.deserialize as (bytes: Buffer) => unknown[] };
}

interface Entry {
  nsp: string;
  rooms: string[];
  except: string[];
  data: EncodedArgs;
  /**
   * Position in this host's log (its delivery order). Fractional for an entry inserted late at
   * its stream position (see {@link ReplayLog.insertLate}), which never hands out a local offset.
   */
  seq: number;
  /** The offset this host handed out with it; undefined for a copy (see {@link AppendOptions}). */
  offset?: string;
  /** Its id in the fleet's shared log (Redis stream), when it went through it. */
  streamId?: string;
  at: number;
  bytes: number;
  /** Inserted by {@link ReplayLog.insertLate}: a room's entry this host did not read live. */
  late?: boolean;
  evicted?: boolean;
}

/** How a broadcast enters the log. */
export interface AppendOptions {
  /** Its id in the fleet's shared log, when the hosts tier orders broadcasts through one. */
  streamId?: string;
  /**
   * Hand out a host-local offset even though it has a stream id: the host is not in step with the
   * shared log (it delivered broadcasts on its own while Redis was unreachable), so a stream id
   * would claim more than its clients received.
   */
  localOffset?: boolean;
  /**
   * Logged, not delivered: this host's own broadcast, delivered on its own while Redis was
   * unreachable, seen again in the shared log. Replayed only to clients arriving from other hosts.
   */
  copy?: boolean;
  /** Its arguments as they arrived (see {@link EncodedArgs}); serialized here when absent. */
  encoded?: EncodedArgs;
}

/** A position in the log: where a session that begins now begins. */
export interface LogPosition {
  /** This host's log position. */
  startSeq: number;
  /** The shared-log id it follows, when the log follows one. */
  startStreamId?: string;
}

/**
 * The primary's bounded, ordered log of the broadcasts this host delivered, with the offset each
 * was handed out with. The primary is the host's single sequencer: offsets are assigned here, in
 * the order the broadcasts are relayed (with Redis in bridge mode, the order of the fleet's shared
 * log, whose ids are then the offsets), and workers deliver them locally in that same order. A
 * client's last offset therefore splits the log exactly into what it has and what it missed.
 */
export class ReplayLog {
  /** Offsets carry this host run's epoch, so an offset from a previous run is never misread. */
  private readonly epoch = randomBytes(4).toString("hex");
  private seq = 0;
  private readonly entries: Entry[] = [];
  private head = 0;
  private bytes = 0;
  /** Handed-out offset -> log position. */
  private readonly offsets = new Map<string, number>();
  /** The entries with a stream id, in stream order (a subsequence of the log). */
  private readonly streamed = new StreamIndex<Entry>();
  /** The log holds every shared-log entry after this id (undefined: it follows no shared log). */
  private streamFloor?: string;
  private lastEvicted?: { offset: string; seq: number };
  private streamBreak?: string;
  evictedPackets = 0;

  constructor(private readonly limits: Pick<RecoveryLimits, "windowMs" | "maxPackets" | "maxBytes">) {}

  /** Broadcasts and bytes held now. */
  size(): { packets: number; bytes: number } {
    return { packets: this.entries.length - this.head, bytes: this.bytes };
  }

  /** Appends a broadcast and returns the offset handed out with it ("" for a copy). */
  append(broadcast: LoggedBroadcast, now = Date.now(), options: AppendOptions = {}): string {
    const seq = ++this.seq;
    const offset = options.copy ? undefined : options.streamId !== undefined && !options.localOffset ? options.streamId : `${this.epoch}:${seq.toString(36)}`;
    const data = options.encoded ?? encodeArgs(broadcast.data ?? []);
    const entry: Entry = { nsp: broadcast.nsp, rooms: broadcast.rooms, except: broadcast.except, data, seq, offset, streamId: options.streamId, at: now, bytes: 0 };
    entry.bytes = entrySize(entry);
    this.entries.push(entry);
    // Local offsets are parsed back (see positionOf); only stream ids need the index.
    if (offset !== undefined && options.streamId === offset) this.offsets.set(offset, seq);
    if (entry.streamId !== undefined) this.streamed.add(entry);
    this.bytes += entry.bytes;
    this.evict(now);
    return offset ?? "";
  }

  /**
   * Logs a shared-log entry this host did not read live: a room's entry caught up after the
   * room's first join here, or a takeover's (tiers/redis/log-routes.ts). In step with the shared
   * log, it goes where the stream puts it (after the newest entry with a lower id), so a client's
   * offset still splits the log exactly; out of step (`localOffset`), at the end, as the joining
   * worker delivers it. Returns its offset; undefined when the log had it live already (workers got
   * it by routing).
   */
  insertLate(broadcast: LoggedBroadcast, streamId: string, now = Date.now(), options: Pick<AppendOptions, "localOffset" | "encoded"> = {}): string | undefined {
    const held = this.streamed.find(streamId);
    if (held) return held.late ? held.offset ?? streamId : undefined;
    let at = this.entries.length;
    if (!options.localOffset) {
      while (at > this.head && (this.entries[at - 1].streamId === undefined ? false : compareStreamIds(this.entries[at - 1].streamId!, streamId) > 0)) at--;
    }
    if (at === this.entries.length) {
      const offset = this.append(broadcast, now, { ...options, streamId });
      this.entries[this.entries.length - 1].late = true;
      return offset;
    }
    const before = at > this.head ? this.entries[at - 1].seq : this.entries[at].seq - 1;
    const seq = (before + this.entries[at].seq) / 2;
    const data = options.encoded ?? encodeArgs(broadcast.data ?? []);
    const entry: Entry = { nsp: broadcast.nsp, rooms: broadcast.rooms, except: broadcast.except, data, seq, offset: streamId, streamId, at: now, bytes: 0, late: true };
    entry.bytes = entrySize(entry);
    this.entries.splice(at, 0, entry);
    this.offsets.set(streamId, seq);
    this.streamed.add(entry);
    this.bytes += entry.bytes;
    this.evict(now);
    return streamId;
  }

  /** Whether the log holds this shared-log entry, and whether it came late (see {@link insertLate}). */
  holds(streamId: string): "live" | "late" | undefined {
    const entry = this.streamed.find(streamId);
    return entry ? (entry.late ? "late" : "live") : undefined;
  }

  /**
   * The shared log's order broke at `streamId`: entries Redis lost before some hosts read them were
   * appended again, so hosts hold them at different places. An offset from before the break is
   * not replayed across hosts (a fresh session), only on the host that handed it out.
   */
  orderBroke(streamId: string): void {
    if (this.streamBreak === undefined || compareStreamIds(streamId, this.streamBreak) > 0) this.streamBreak = streamId;
  }

  /** From now on the log follows the shared log, holding every entry after `streamId`. */
  followStream(streamId: string): void {
    this.streamFloor ??= streamId;
  }

  /** Where a session beginning now begins: this host's log position and the shared-log id it follows. */
  here(): LogPosition {
    return { startSeq: this.seq, startStreamId: this.streamed.newest() ?? this.streamed.evictedId ?? this.streamFloor };
  }

  /** What this host delivered after position `seq`, in its order; undefined when seq left the log. */
  replayLocal(seq: number, nsp: string, rooms: Set<string>): unknown[][] | undefined {
    const oldest = this.head < this.entries.length ? this.entries[this.head].seq : this.seq + 1;
    if (seq < oldest - 1) return undefined;
    const missed: unknown[][] = [];
    for (let i = this.firstAfter(seq); i < this.entries.length; i++) {
      const entry = this.entries[i];
      if (entry.offset !== undefined && entry.nsp === nsp && matches(entry, rooms)) missed.push([...decode(entry), entry.offset]);
    }
    return missed;
  }

  /**
   * Every shared-log entry after `streamId`, in stream order (which is this host's order for
   * them). Undefined unless the log holds all of them: it followed the shared log since before
   * `streamId` and has evicted none after it.
   */
  replayStream(streamId: string, nsp: string, rooms: Set<string>): unknown[][] | undefined {
    if (this.streamFloor === undefined || compareStreamIds(streamId, this.streamFloor) < 0) return undefined;
    const evicted = this.streamed.evictedId;
    if (evicted !== undefined && compareStreamIds(streamId, evicted) < 0) return undefined;
    if (this.streamBreak !== undefined && compareStreamIds(streamId, this.streamBreak) < 0) return undefined;
    const missed: unknown[][] = [];
    for (const entry of this.streamed.after(streamId)) {
      if (entry.nsp === nsp && matches(entry, rooms)) missed.push([...decode(entry), entry.offset ?? entry.streamId]);
    }
    return missed;
  }

  /** The log position of an offset this host handed out, if it can still tell. */
  positionOf(offset: string): number | undefined {
    const [epoch, seq] = offset.split(":");
    if (epoch === this.epoch && seq !== undefined) {
      const value = parseInt(seq, 36);
      return Number.isSafeInteger(value) && value <= this.seq ? value : undefined;
    }
    // The entry just evicted still splits the log exactly: everything after it is there.
    return this.offsets.get(offset) ?? (offset === this.lastEvicted?.offset ? this.lastEvicted.seq : undefined);
  }

  /** Index of the first log entry with a sequence number above `seq` (the log is sorted by seq). */
  private firstAfter(seq: number): number {
    let low = this.head;
    let high = this.entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.entries[mid].seq <= seq) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Drops what is older than the window or beyond the count and byte bounds. */
  evict(now: number): void {
    const { windowMs, maxPackets, maxBytes } = this.limits;
    while (this.head < this.entries.length) {
      const entry = this.entries[this.head];
      const tooMany = this.entries.length - this.head > maxPackets;
      if (!tooMany && this.bytes <= maxBytes && now - entry.at <= windowMs) break;
      this.bytes -= entry.bytes;
      this.head++;
      this.evictedPackets++;
      if (entry.offset !== undefined && this.offsets.delete(entry.offset)) this.lastEvicted = { offset: entry.offset, seq: entry.seq };
      if (entry.streamId !== undefined) {
        entry.evicted = true;
        this.streamed.evicted(entry);
      }
    }
    // Compact now and then rather than shift() per entry, which is O(n).
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }
}

/**
 * Bytes an entry holds besides its encoded arguments: the entry, its Buffer and their allocator
 * overhead (measured: about 500 bytes an entry beside the data, on Node 20).
 */
const ENTRY_OVERHEAD = 512;
const STRING_OVERHEAD = 24;

/**
 * What an entry retains: its serialized data byte for byte, plus its room names, ids and fixed
 * overhead (strings counted at two bytes a character, V8's widest).
 */
function entrySize(entry: Entry): number {
  let size = ENTRY_OVERHEAD + entry.data.bytes.length + STRING_OVERHEAD + entry.nsp.length * 2;
  for (const room of entry.rooms) size += STRING_OVERHEAD + room.length * 2 + 8;
  for (const room of entry.except) size += STRING_OVERHEAD + room.length * 2 + 8;
  if (entry.offset !== undefined) size += STRING_OVERHEAD + entry.offset.length * 2;
  if (entry.streamId !== undefined && entry.streamId !== entry.offset) size += STRING_OVERHEAD + entry.streamId.length * 2;
  return size;
}

function decode(entry: Entry): unknown[] {
  return entry.data.decode(entry.data.bytes);
}

function matches(entry: { rooms: string[]; except: string[] }, rooms: Set<string>): boolean {
  if (entry.except.some((room) => rooms.has(room))) return false;
  return entry.rooms.length === 0 || entry.rooms.some((room) => rooms.has(room));
}

