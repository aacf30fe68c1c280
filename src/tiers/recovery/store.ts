import { ReplayLog, type AppendOptions, type LoggedBroadcast } from "./replay-log";
import { FROM_SESSION_START, isStreamId } from "./offsets";
import { RoomTally } from "./room-tally";

/** What a worker needs to rebuild a socket: socket.io's `Session` plus the packets it missed. */
export interface RecoveredSession {
  sid: string;
  pid: string;
  rooms: string[];
  data: unknown;
  /** Event argument arrays, each ending with its offset, in the order they were broadcast. */
  missedPackets: unknown[][];
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
 * The primary's record of every session on this host, beside the replay log of the broadcasts
 * sent to them (replay-log.ts). It outlives any worker, so a client whose worker crashed, or was
 * replaced by a rolling restart, can resume on another worker: same socket id, same rooms, and
 * every broadcast it missed, in order, exactly once.
 */
export class RecoveryStore {
  private readonly log: ReplayLog;
  private readonly sessions = new Map<string, SessionRecord>();
  private readonly byKey = new Map<string, string>();
  private readonly counters = { recovered: 0, expired: 0 };
  private readonly tally = new RoomTally();

  /**
   * @param onChange called with a session's pid whenever what {@link share} returns for it changes
   *   (the hosts tier mirrors sessions to Redis).
   */
  constructor(
    private readonly limits: RecoveryLimits,
    private readonly onChange?: (pid: string) => void,
  ) {
    this.log = new ReplayLog(limits);
  }

  /** Appends a broadcast to the replay log and returns the offset handed out with it ("" for a copy). */
  append(broadcast: LoggedBroadcast, now = Date.now(), options: AppendOptions = {}): string {
    return this.log.append(broadcast, now, options);
  }

  /** See {@link ReplayLog.insertLate}. */
  insertLate(broadcast: LoggedBroadcast, streamId: string, options?: Pick<AppendOptions, "localOffset" | "encoded">): string | undefined {
    return this.log.insertLate(broadcast, streamId, Date.now(), options);
  }

  /** See {@link ReplayLog.holds}. */
  holds(streamId: string): "live" | "late" | undefined {
    return this.log.holds(streamId);
  }

  /** Whether a session this host knows (held or recoverable) is in the room. */
  holdsRoom(nsp: string, room: string): boolean {
    return this.tally.has(nsp, room);
  }

  /** See {@link ReplayLog.orderBroke}. */
  orderBroke(streamId: string): void {
    this.log.orderBroke(streamId);
  }

  /** See {@link ReplayLog.followStream}. */
  followStream(streamId: string): void {
    this.log.followStream(streamId);
  }

  /** A socket connected, or joined rooms. `pid`, `data` and `offsets` come with its first join. */
  joined(worker: number, nsp: string, sid: string, rooms: string[], pid?: string, data?: unknown, offsets?: boolean): void {
    const key = `${nsp}\0${sid}`;
    let record = this.sessions.get(this.byKey.get(key) ?? "");
    if (!record) {
      if (pid === undefined) return;
      record = { nsp, sid, pid, rooms: new Set(), data, worker, offsets: offsets ?? false, ...this.log.here() };
      this.sessions.set(pid, record);
      this.byKey.set(key, pid);
    } else if (offsets !== undefined) {
      record.offsets = offsets; // a restored session's new connection
    }
    for (const room of rooms) this.addRoom(record, room);
    this.onChange?.(record.pid);
  }

  left(nsp: string, sid: string, rooms: string[]): void {
    const record = this.sessions.get(this.byKey.get(`${nsp}\0${sid}`) ?? "");
    if (!record || record.disconnectedAt !== undefined) return;
    for (const room of rooms) if (record.rooms.delete(room)) this.tally.remove(record.nsp, room);
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
      record = { nsp, sid, pid, rooms: new Set(), data, offsets: false, ...this.log.here() };
      this.sessions.set(pid, record);
      this.byKey.set(`${nsp}\0${sid}`, pid);
    }
    for (const room of record.rooms) this.tally.remove(nsp, room);
    record.rooms = new Set();
    for (const room of rooms) this.addRoom(record, room);
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
    this.log.evict(now);
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
    let seq = fromStart ? record.startSeq : this.log.positionOf(offset);
    // socket.io-client keeps its last offset across a session it could not recover, and sends it
    // with the next session's pid: nothing before this session began is this session's to replay.
    if (seq !== undefined && record.startSeq !== undefined && seq < record.startSeq) seq = record.startSeq;
    const streamOffset = fromStart ? record.startStreamId : offset;
    let missedPackets: unknown[][] | undefined;
    if (seq !== undefined) missedPackets = this.log.replayLocal(seq, nsp, record.rooms);
    // An offset this host never handed out: the client was restored here from another host and
    // has only seen stream-ordered replay since.
    else if (streamOffset !== undefined && isStreamId(streamOffset)) missedPackets = this.log.replayStream(streamOffset, nsp, record.rooms);
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
    this.log.evict(now);
    const rooms = new Set(session.rooms);
    const missedPackets = isStreamId(offset) ? this.log.replayStream(offset, session.nsp, rooms) : undefined;
    if (missedPackets === undefined) {
      this.counters.expired++;
      return null;
    }
    const previous = this.sessions.get(session.pid);
    if (previous) this.forget(previous);
    const record: SessionRecord = { nsp: session.nsp, sid: session.sid, pid: session.pid, rooms: new Set(), data: session.data, offsets: true, startStreamId: session.start };
    for (const room of rooms) this.addRoom(record, room);
    this.sessions.set(record.pid, record);
    this.byKey.set(`${record.nsp}\0${record.sid}`, record.pid);
    this.hold(record, worker);
    return { sid: record.sid, pid: record.pid, rooms: session.rooms, data: session.data, missedPackets };
  }

  private hold(record: SessionRecord, worker: number): void {
    record.worker = worker;
    record.disconnectedAt = undefined;
    this.counters.recovered++;
    this.onChange?.(record.pid);
  }

  stats(): RecoveryStats {
    let disconnected = 0;
    for (const record of this.sessions.values()) if (record.disconnectedAt !== undefined) disconnected++;
    return {
      ...this.log.size(),
      sessions: this.sessions.size,
      disconnectedSessions: disconnected,
      ...this.counters,
      evictedPackets: this.log.evictedPackets,
    };
  }

  private disconnect(record: SessionRecord, now: number): void {
    record.worker = undefined;
    record.disconnectedAt = now;
    this.onChange?.(record.pid);
  }

  private addRoom(record: SessionRecord, room: string): void {
    if (record.rooms.has(room)) return;
    record.rooms.add(room);
    this.tally.add(record.nsp, room);
  }

  private forget(record: SessionRecord): void {
    if (this.sessions.get(record.pid) !== record) return;
    for (const room of record.rooms) this.tally.remove(record.nsp, room);
    this.sessions.delete(record.pid);
    if (this.byKey.get(`${record.nsp}\0${record.sid}`) === record.pid) this.byKey.delete(`${record.nsp}\0${record.sid}`);
    this.onChange?.(record.pid);
  }

  /** Forgets expired disconnected sessions, and the oldest beyond the count bound. Run periodically. */
  sweep(now = Date.now()): void {
    this.log.evict(now);
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

