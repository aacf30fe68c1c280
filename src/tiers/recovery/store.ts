import { randomBytes } from "node:crypto";
import v8 from "node:v8";

/** What a worker needs to rebuild a socket: socket.io's `Session` plus the packets it missed. */
export interface RecoveredSession {
  sid: string;
  pid: string;
  rooms: string[];
  data: unknown;
  /** Event argument arrays, each ending with its offset, in the order they were broadcast. */
  missedPackets: unknown[][];
}

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

export interface RecoveryLimits {
  /** How long a disconnected session can be recovered (socket.io's maxDisconnectionDuration). */
  windowMs: number;
  /** Most broadcasts kept for replay. */
  maxPackets: number;
  /** Most bytes kept for replay: the serialized broadcasts, which is what the log holds. */
  maxBytes: number;
  /** Most disconnected sessions kept. */
  maxSessions: number;
}

interface Entry {
  nsp: string;
  rooms: string[];
  except: string[];
  data: EncodedArgs;
  /** Position in this host's log (its delivery order). */
  seq: number;
  /** The offset this host handed out with it; undefined for a copy (see {@link AppendOptions}). */
  offset?: string;
  /** Its id in the fleet's shared log (Redis stream), when it went through it. */
  streamId?: string;
  at: number;
  bytes: number;
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

/**
 * The offset of a restore request that brought none: replay from where the session began.
 *
 * socket.io-client learns an offset only from a broadcast, so a client that received none before
 * it lost its connection reconnects with its pid alone (see worker/guard/guarded-parser.ts). It
 * received nothing of the log since its session began, so that position splits the log as exactly
 * as an offset would.
 */
export const FROM_SESSION_START = "";

/** A session as the hosts tier shares it, so another host can take it over. */
export interface SharedSession {
  nsp: string;
  sid: string;
  pid: string;
  rooms: string[];
  data: unknown;
  /** Held by a connection now (false once disconnected and recoverable). */
  connected: boolean;
  /** The shared-log id the session began after, when known: where a pid-only restore replays from. */
  start?: string;
}

interface SessionRecord {
  nsp: string;
  sid: string;
  pid: string;
  rooms: Set<string>;
  data: unknown;
  /** The worker holding it, or undefined once it is disconnected. */
  worker?: number;
  disconnectedAt?: number;
  /**
   * Whether its client gets offsets (recovery/offset-clients.ts). Only then does a CONNECT
   * without an offset mean "nothing received": a client that gets none never has one to send.
   */
  offsets: boolean;
  /** This host's log position when the session began here (undefined for one taken over). */
  startSeq?: number;
  /** The shared-log id it began after (see {@link SharedSession.start}). */
  startStreamId?: string;
}

export interface RecoveryStats {
  packets: number;
  bytes: number;
  sessions: number;
  disconnectedSessions: number;
  recovered: number;
  /** Restores refused because the client's offset had already left the log (the client starts afresh). */
  expired: number;
  evictedPackets: number;
}

/**
 * The primary's record of every session on this host and a bounded, ordered log of the
 * broadcasts sent to them. It outlives any worker, so a client whose worker crashed, or was
 * replaced by a rolling restart, can resume on another worker: same socket id, same rooms, and
 * every broadcast it missed, in order, exactly once.
 *
 * The primary is the host's single sequencer: offsets are assigned here, in the order the
 * broadcasts are relayed (with Redis in bridge mode, the order of the fleet's shared log, whose ids
 * are then the offsets), and workers deliver them locally in that same order. A client's last
 * offset therefore splits the log exactly into what it has and what it missed.
 */
export class RecoveryStore {
  /** Offsets carry this host run's epoch, so an offset from a previous run is never misread. */
  private readonly epoch = randomBytes(4).toString("hex");
  private seq = 0;
  private readonly log: Entry[] = [];
  private head = 0;
  private bytes = 0;
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly byKey = new Map<string, string>();
  /** Handed-out offset -> log position. */
  private readonly offsets = new Map<string, number>();
  /** The entries with a stream id, in stream order (a subsequence of the log). */
  private readonly streamed: Entry[] = [];
  private streamHead = 0;
  /** The log holds every shared-log entry after this id (undefined: it follows no shared log). */
  private streamFloor?: string;
  private lastEvicted?: { offset: string; seq: number };
  private streamBreak?: string;
  /** The newest shared-log id evicted from the log. */
  private evictedStreamId?: string;
  private readonly counters = { recovered: 0, expired: 0, evictedPackets: 0 };

  /**
   * @param onChange called with a session's pid whenever what {@link share} returns for it changes
   *   (the hosts tier mirrors sessions to Redis).
   */
  constructor(
    private readonly limits: RecoveryLimits,
    private readonly onChange?: (pid: string) => void,
  ) {}

  /** Appends a broadcast and returns the offset handed out with it ("" for a copy). */
  append(broadcast: LoggedBroadcast, now = Date.now(), options: AppendOptions = {}): string {
    const seq = ++this.seq;
    const offset = options.copy ? undefined : options.streamId !== undefined && !options.localOffset ? options.streamId : `${this.epoch}:${seq.toString(36)}`;
    const data = options.encoded ?? encodeArgs(broadcast.data ?? []);
    const entry: Entry = { nsp: broadcast.nsp, rooms: broadcast.rooms, except: broadcast.except, data, seq, offset, streamId: options.streamId, at: now, bytes: 0 };
    entry.bytes = entrySize(entry);
    this.log.push(entry);
    // Local offsets are parsed back (see positionOf); only stream ids need the index.
    if (offset !== undefined && options.streamId === offset) this.offsets.set(offset, seq);
    if (entry.streamId !== undefined) this.streamed.push(entry);
    this.bytes += entry.bytes;
    this.evictLog(now);
    return offset ?? "";
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

  /** A socket connected, or joined rooms. `pid`, `data` and `offsets` come with its first join. */
  joined(worker: number, nsp: string, sid: string, rooms: string[], pid?: string, data?: unknown, offsets?: boolean): void {
    const key = `${nsp}\0${sid}`;
    let record = this.sessions.get(this.byKey.get(key) ?? "");
    if (!record) {
      if (pid === undefined) return;
      record = { nsp, sid, pid, rooms: new Set(), data, worker, offsets: offsets ?? false, ...this.here() };
      this.sessions.set(pid, record);
      this.byKey.set(key, pid);
    } else if (offsets !== undefined) {
      record.offsets = offsets; // a restored session's new connection
    }
    for (const room of rooms) record.rooms.add(room);
    this.onChange?.(record.pid);
  }

  left(nsp: string, sid: string, rooms: string[]): void {
    const record = this.sessions.get(this.byKey.get(`${nsp}\0${sid}`) ?? "");
    if (!record || record.disconnectedAt !== undefined) return;
    for (const room of rooms) record.rooms.delete(room);
    this.onChange?.(record.pid);
  }

  /** The socket is gone. Unless it was persisted first (a recoverable disconnect), forget it. */
  ended(nsp: string, sid: string): void {
    const key = `${nsp}\0${sid}`;
    const pid = this.byKey.get(key);
    const record = pid === undefined ? undefined : this.sessions.get(pid);
    if (!record || record.disconnectedAt !== undefined) return;
    this.forget(record);
  }

  /** A recoverable disconnect reported by the worker (socket.io's persistSession). */
  persisted(nsp: string, sid: string, pid: string, rooms: string[], data: unknown, now = Date.now()): void {
    let record = this.sessions.get(pid);
    if (!record) {
      record = { nsp, sid, pid, rooms: new Set(rooms), data, offsets: false, ...this.here() };
      this.sessions.set(pid, record);
      this.byKey.set(`${nsp}\0${sid}`, pid);
    }
    record.rooms = new Set(rooms);
    record.data = data;
    this.disconnect(record, now);
  }

  /** Another host took the session over: it is no longer this host's to restore. */
  taken(pid: string): void {
    const record = this.sessions.get(pid);
    if (record && record.disconnectedAt !== undefined) this.forget(record);
  }

  /** Whether this host knows the session (held here, or disconnected from here and recoverable). */
  has(pid: string): boolean {
    return this.sessions.has(pid);
  }

  /** Pids of every session this host knows. */
  pids(): IterableIterator<string> {
    return this.sessions.keys();
  }

  /** The session as other hosts need it, undefined once this host forgot it. */
  share(pid: string): SharedSession | undefined {
    const record = this.sessions.get(pid);
    if (!record) return undefined;
    const shared: SharedSession = { nsp: record.nsp, sid: record.sid, pid, rooms: [...record.rooms], data: record.data, connected: record.disconnectedAt === undefined };
    if (record.offsets && record.startStreamId !== undefined) shared.start = record.startStreamId;
    return shared;
  }

  /** A worker died: every session it held is now disconnected and recoverable. */
  workerGone(worker: number, now = Date.now()): void {
    for (const record of this.sessions.values()) if (record.worker === worker) this.disconnect(record, now);
  }

  /**
   * Hands a disconnected session to `worker` with every broadcast after `offset` that was meant for
   * it. Returns null (the client gets a fresh session) when the session is unknown, expired, held by
   * a live worker, or when `offset` is older than the log: a gap is never hidden.
   */
  restore(worker: number, nsp: string, pid: string, offset: string, isLive: (worker: number) => boolean, now = Date.now()): RecoveredSession | null {
    this.evictLog(now);
    const record = this.sessions.get(pid);
    if (!record || record.nsp !== nsp) return null;
    if (record.disconnectedAt !== undefined && now - record.disconnectedAt > this.limits.windowMs) {
      this.forget(record);
      return null;
    }
    if (record.disconnectedAt === undefined) {
      if (record.worker !== undefined && isLive(record.worker)) return null;
      this.disconnect(record, now);
    }
    const fromStart = offset === FROM_SESSION_START;
    if (fromStart && !record.offsets) return null;
    let seq = fromStart ? record.startSeq : this.positionOf(offset);
    // socket.io-client keeps its last offset across a session it could not recover, and sends it
    // with the next session's pid: nothing before this session began is this session's to replay.
    if (seq !== undefined && record.startSeq !== undefined && seq < record.startSeq) seq = record.startSeq;
    const streamOffset = fromStart ? record.startStreamId : offset;
    let missedPackets: unknown[][] | undefined;
    if (seq !== undefined) missedPackets = this.replayLocal(seq, nsp, record.rooms);
    // An offset this host never handed out: the client was restored here from another host and
    // has only seen stream-ordered replay since.
    else if (streamOffset !== undefined && isStreamId(streamOffset)) missedPackets = this.replayStream(streamOffset, nsp, record.rooms);
    if (missedPackets === undefined) {
      this.counters.expired++;
      this.forget(record);
      return null;
    }
    this.hold(record, worker);
    return { sid: record.sid, pid: record.pid, rooms: [...record.rooms], data: record.data, missedPackets };
  }

  /**
   * Takes over a session another host held (the client came back here), with every broadcast of
   * the shared log after `offset` that was meant for it. Null (a fresh session) when `offset` is
   * not a shared-log id or this host's log does not cover it.
   */
  adopt(worker: number, session: SharedSession, offset: string, now = Date.now()): RecoveredSession | null {
    this.evictLog(now);
    const rooms = new Set(session.rooms);
    const missedPackets = isStreamId(offset) ? this.replayStream(offset, session.nsp, rooms) : undefined;
    if (missedPackets === undefined) {
      this.counters.expired++;
      return null;
    }
    const previous = this.sessions.get(session.pid);
    if (previous) this.forget(previous);
    const record: SessionRecord = { nsp: session.nsp, sid: session.sid, pid: session.pid, rooms, data: session.data, offsets: true, startStreamId: session.start };
    this.sessions.set(record.pid, record);
    this.byKey.set(`${record.nsp}\0${record.sid}`, record.pid);
    this.hold(record, worker);
    return { sid: record.sid, pid: record.pid, rooms: session.rooms, data: session.data, missedPackets };
  }

  /** Where a session beginning now begins: this host's log position and the shared-log id it follows. */
  private here(): { startSeq: number; startStreamId?: string } {
    const newest = this.streamed.length > this.streamHead ? this.streamed[this.streamed.length - 1].streamId : undefined;
    return { startSeq: this.seq, startStreamId: newest ?? this.evictedStreamId ?? this.streamFloor };
  }

  private hold(record: SessionRecord, worker: number): void {
    record.worker = worker;
    record.disconnectedAt = undefined;
    this.counters.recovered++;
    this.onChange?.(record.pid);
  }

  /** What this host delivered after position `seq`, in its order; undefined when seq left the log. */
  private replayLocal(seq: number, nsp: string, rooms: Set<string>): unknown[][] | undefined {
    const oldest = this.head < this.log.length ? this.log[this.head].seq : this.seq + 1;
    if (seq < oldest - 1) return undefined;
    const missed: unknown[][] = [];
    for (let i = this.firstAfter(seq); i < this.log.length; i++) {
      const entry = this.log[i];
      if (entry.offset !== undefined && entry.nsp === nsp && matches(entry, rooms)) missed.push([...decode(entry), entry.offset]);
    }
    return missed;
  }

  /**
   * Every shared-log entry after `streamId`, in stream order (which is this host's order for
   * them). Undefined unless the log holds all of them: it followed the shared log since before
   * `streamId` and has evicted none after it.
   */
  private replayStream(streamId: string, nsp: string, rooms: Set<string>): unknown[][] | undefined {
    if (this.streamFloor === undefined || compareStreamIds(streamId, this.streamFloor) < 0) return undefined;
    if (this.evictedStreamId !== undefined && compareStreamIds(streamId, this.evictedStreamId) < 0) return undefined;
    if (this.streamBreak !== undefined && compareStreamIds(streamId, this.streamBreak) < 0) return undefined;
    let low = this.streamHead;
    let high = this.streamed.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareStreamIds(this.streamed[mid].streamId!, streamId) <= 0) low = mid + 1;
      else high = mid;
    }
    const missed: unknown[][] = [];
    for (let i = low; i < this.streamed.length; i++) {
      const entry = this.streamed[i];
      if (entry.nsp === nsp && matches(entry, rooms)) missed.push([...decode(entry), entry.offset ?? entry.streamId]);
    }
    return missed;
  }

  /** The log position of an offset this host handed out, if it can still tell. */
  private positionOf(offset: string): number | undefined {
    const [epoch, seq] = offset.split(":");
    if (epoch === this.epoch && seq !== undefined) {
      const value = parseInt(seq, 36);
      return Number.isSafeInteger(value) && value <= this.seq ? value : undefined;
    }
    // The entry just evicted still splits the log exactly: everything after it is there.
    return this.offsets.get(offset) ?? (offset === this.lastEvicted?.offset ? this.lastEvicted.seq : undefined);
  }

  stats(): RecoveryStats {
    let disconnected = 0;
    for (const record of this.sessions.values()) if (record.disconnectedAt !== undefined) disconnected++;
    return {
      packets: this.log.length - this.head,
      bytes: this.bytes,
      sessions: this.sessions.size,
      disconnectedSessions: disconnected,
      ...this.counters,
    };
  }

  /** Index of the first log entry with a sequence number above `seq` (the log is sorted by seq). */
  private firstAfter(seq: number): number {
    let low = this.head;
    let high = this.log.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.log[mid].seq <= seq) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  private disconnect(record: SessionRecord, now: number): void {
    record.worker = undefined;
    record.disconnectedAt = now;
    this.onChange?.(record.pid);
  }

  private forget(record: SessionRecord): void {
    this.sessions.delete(record.pid);
    if (this.byKey.get(`${record.nsp}\0${record.sid}`) === record.pid) this.byKey.delete(`${record.nsp}\0${record.sid}`);
    this.onChange?.(record.pid);
  }

  private evictLog(now: number): void {
    const { windowMs, maxPackets, maxBytes } = this.limits;
    while (this.head < this.log.length) {
      const entry = this.log[this.head];
      const tooMany = this.log.length - this.head > maxPackets;
      if (!tooMany && this.bytes <= maxBytes && now - entry.at <= windowMs) break;
      this.bytes -= entry.bytes;
      this.head++;
      this.counters.evictedPackets++;
      if (entry.offset !== undefined && this.offsets.delete(entry.offset)) this.lastEvicted = { offset: entry.offset, seq: entry.seq };
      if (entry.streamId !== undefined) {
        this.evictedStreamId = entry.streamId;
        this.streamHead++;
      }
    }
    // Compact now and then rather than shift() per entry, which is O(n).
    if (this.head > 1024 && this.head * 2 > this.log.length) {
      this.log.splice(0, this.head);
      this.head = 0;
    }
    if (this.streamHead > 1024 && this.streamHead * 2 > this.streamed.length) {
      this.streamed.splice(0, this.streamHead);
      this.streamHead = 0;
    }
  }

  /** Forgets expired disconnected sessions, and the oldest beyond the count bound. Run periodically. */
  sweep(now = Date.now()): void {
    this.evictLog(now);
    const { windowMs, maxSessions } = this.limits;
    let disconnected = 0;
    for (const record of this.sessions.values()) {
      if (record.disconnectedAt === undefined) continue;
      if (now - record.disconnectedAt > windowMs) this.forget(record);
      else disconnected++;
    }
    if (disconnected > maxSessions) {
      // Map iteration is insertion order, close enough to oldest-first for a safety bound.
      for (const record of this.sessions.values()) {
        if (disconnected <= maxSessions) break;
        if (record.disconnectedAt === undefined) continue;
        this.forget(record);
        disconnected--;
      }
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

/** Whether `offset` is an id of the shared log (a Redis stream id, "<ms>-<n>"). */
export function isStreamId(offset: string): boolean {
  return /^\d{1,16}-\d{1,16}$/.test(offset);
}

/** Orders two Redis stream ids. */
export function compareStreamIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split("-");
  const [bMs, bSeq] = b.split("-");
  return Number(aMs) - Number(bMs) || Number(aSeq) - Number(bSeq);
}
