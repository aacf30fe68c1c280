import { randomBytes } from "node:crypto";

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
  /** The event's arguments (name first), without the offset. */
  data: unknown[];
}

export interface RecoveryLimits {
  /** How long a disconnected session can be recovered (socket.io's maxDisconnectionDuration). */
  windowMs: number;
  /** Most broadcasts kept for replay. */
  maxPackets: number;
  /** Most bytes (serialized) kept for replay. */
  maxBytes: number;
  /** Most disconnected sessions kept. */
  maxSessions: number;
}

interface Entry extends LoggedBroadcast {
  seq: number;
  offset: string;
  at: number;
  bytes: number;
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
 * The primary is the single sequencer: offsets are assigned here, in the order the broadcasts are
 * relayed, and workers deliver them locally in that same order. A client's last offset therefore
 * splits the log exactly into what it has and what it missed.
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
  private readonly counters = { recovered: 0, expired: 0, evictedPackets: 0 };

  constructor(private readonly limits: RecoveryLimits) {}

  /** Appends a broadcast and returns its offset. */
  append(broadcast: LoggedBroadcast, now = Date.now()): string {
    const seq = ++this.seq;
    const offset = `${this.epoch}-${seq.toString(36)}`;
    const bytes = approximateSize(broadcast.data) + 64;
    this.log.push({ ...broadcast, seq, offset, at: now, bytes });
    this.bytes += bytes;
    this.evictLog(now);
    return offset;
  }

  /** A socket connected, or joined rooms. `pid` and `data` come with its first join. */
  joined(worker: number, nsp: string, sid: string, rooms: string[], pid?: string, data?: unknown): void {
    const key = `${nsp}\0${sid}`;
    let record = this.sessions.get(this.byKey.get(key) ?? "");
    if (!record) {
      if (pid === undefined) return;
      record = { nsp, sid, pid, rooms: new Set(), data, worker };
      this.sessions.set(pid, record);
      this.byKey.set(key, pid);
    }
    for (const room of rooms) record.rooms.add(room);
  }

  left(nsp: string, sid: string, rooms: string[]): void {
    const record = this.sessions.get(this.byKey.get(`${nsp}\0${sid}`) ?? "");
    if (!record || record.disconnectedAt !== undefined) return;
    for (const room of rooms) record.rooms.delete(room);
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
      record = { nsp, sid, pid, rooms: new Set(rooms), data };
      this.sessions.set(pid, record);
      this.byKey.set(`${nsp}\0${sid}`, pid);
    }
    record.rooms = new Set(rooms);
    record.data = data;
    this.disconnect(record, now);
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
    const seq = this.parseOffset(offset);
    const oldest = this.head < this.log.length ? this.log[this.head].seq : this.seq + 1;
    if (seq === undefined || seq < oldest - 1 || seq > this.seq) {
      this.counters.expired++;
      this.forget(record);
      return null;
    }
    const missedPackets: unknown[][] = [];
    for (let i = this.firstAfter(seq); i < this.log.length; i++) {
      const entry = this.log[i];
      if (entry.seq > seq && entry.nsp === nsp && matches(entry, record.rooms)) missedPackets.push([...entry.data, entry.offset]);
    }
    record.worker = worker;
    record.disconnectedAt = undefined;
    this.counters.recovered++;
    return { sid: record.sid, pid: record.pid, rooms: [...record.rooms], data: record.data, missedPackets };
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

  private parseOffset(offset: string): number | undefined {
    const [epoch, seq] = offset.split("-");
    if (epoch !== this.epoch || seq === undefined) return undefined;
    const value = parseInt(seq, 36);
    return Number.isSafeInteger(value) ? value : undefined;
  }

  private disconnect(record: SessionRecord, now: number): void {
    record.worker = undefined;
    record.disconnectedAt = now;
  }

  private forget(record: SessionRecord): void {
    this.sessions.delete(record.pid);
    if (this.byKey.get(`${record.nsp}\0${record.sid}`) === record.pid) this.byKey.delete(`${record.nsp}\0${record.sid}`);
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
    }
    // Compact now and then rather than shift() per entry, which is O(n).
    if (this.head > 1024 && this.head * 2 > this.log.length) {
      this.log.splice(0, this.head);
      this.head = 0;
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
 * A cheap estimate of a value's size in memory, for the byte bound of the log: exact serialization
 * of every broadcast would cost the primary more than the relaying itself.
 */
export function approximateSize(value: unknown, depth = 0): number {
  switch (typeof value) {
    case "string":
      return 16 + value.length * 2;
    case "number":
    case "boolean":
    case "undefined":
      return 8;
    case "object": {
      if (value === null) return 8;
      if (ArrayBuffer.isView(value)) return 32 + value.byteLength;
      if (value instanceof ArrayBuffer) return 32 + value.byteLength;
      if (depth > 8) return 64;
      let size = 32;
      if (Array.isArray(value)) for (const item of value) size += approximateSize(item, depth + 1);
      else for (const [key, item] of Object.entries(value)) size += 16 + key.length * 2 + approximateSize(item, depth + 1);
      return size;
    }
    default:
      return 32;
  }
}

function matches(entry: LoggedBroadcast, rooms: Set<string>): boolean {
  if (entry.except.some((room) => rooms.has(room))) return false;
  return entry.rooms.length === 0 || entry.rooms.some((room) => rooms.has(room));
}
