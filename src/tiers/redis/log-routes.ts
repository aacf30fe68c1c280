import { routedRooms, type RouteJoin, type Stamp } from "../../primary/room-routes";
import type { Logger } from "../../observability/logger";
import { compareStreamIds } from "../recovery/offsets";
import type { AdapterMessage } from "../cluster/relay";
import { boundedWait } from "./bounded-wait";
import type { Channels } from "./channels";
import type { FeedLogReader, RawEntry, RoomChannels } from "./feed-reader";
import { routedChannel } from "./feed-reader";
import { maySocketId } from "./socket-id-rooms";
import type { EntryRouter } from "./stream-order";
import type { RedisTransport } from "./transport";

/** A shared-log entry of a room just joined that this host did not read live, with its offset (worker/data-link.ts places it). */
export type LateCatchUp = [streamId: string, message: AdapterMessage];

/** A room's channel stays subscribed this long after its last holder left (a leave/join flap costs no catch-up; own entries in flight still come back). */
const LINGER_MS = 5_000;
/** A room named by a takeover stays subscribed at least this long, while the session is adopted. */
const TAKEOVER_PIN_MS = 30_000;
/** Joins and readers wait this long at most for a room's SUBSCRIBE (which answers, or fails with its connection, well before). */
const SUBSCRIBE_TIMEOUT_MS = 5_000;

export interface LogRoutesDeps {
  channels: Channels;
  redis: RedisTransport;
  reader: FeedLogReader;
  /** Logs a late entry at its place; its message with the offset, undefined when this host had it live (stream-order.ts). */
  late(entry: RawEntry): AdapterMessage | undefined;
  /** Whether a worker of this host holds a member of the room, or the recovery store a session in it. */
  holds(nsp: string, room: string): boolean;
}

export interface LogRouteCounts {
  /** Scans of the shared log after first joins and takeovers. */
  scans: number;
  /** Entries those scans brought that this host had not read live. */
  caughtUp: number;
  /** Scans that did not finish (the joins were answered without them). */
  failed: number;
}

interface RoomState {
  nsp: string;
  room: string;
  channel: string;
  /** When SUBSCRIBE was confirmed on the current connection: a join stamped later misses nothing. */
  confirmedAt?: Stamp;
  ready: Promise<void>;
  settle(): void;
  /** The log holds every entry of this room after this id (set by the catch-up of its first join or a takeover). */
  coveredFrom?: string;
  /** No holder since (checked every second): unsubscribed once LINGER_MS passed. */
  idleSince?: number;
  /** Kept subscribed until then whatever holds it (a takeover in progress). */
  pinnedUntil?: number;
}

/**
 * Room routing of the shared log (recovery on, one Redis node). The script that appends a
 * broadcast to exactly one named room publishes it on that room's channel instead of the feed
 * (feed-reader.ts), and a host subscribes to a room's channel while one of its workers holds a
 * member or its recovery store a session in the room. One subscriber connection receives the feed
 * and its rooms' channels in execution order, so a host still reads a subsequence of the one
 * stream, in stream order: offsets stay stream ids, and a host without members spends nothing.
 *
 * First join. A broadcast emitted after `socket.join()` returned may be appended before this host's
 * SUBSCRIBE took effect. Its id is above where this host's reader stood at the join's stamp
 * (position-log.ts), so once the room is subscribed the host scans the stream from there for the
 * room's entries and waits for the scan's marker to come back on its subscriber: what it has not
 * read live by then it never will. Those are logged at their stream position (recovery/replay-log.ts
 * `insertLate`) and sent to the joining worker, which holds its traffic from the join until then and
 * places them by stream id (worker/data-link.ts).
 *
 * Takeover. A client arriving from another host names its rooms; those this host did not read since
 * the client's offset are subscribed and scanned from that offset before its replay is cut.
 */
export class LogRoutes implements EntryRouter, RoomChannels {
  private readonly rooms = new Map<string, RoomState>();
  private readonly byChannel = new Map<string, RoomState>();
  readonly counts: LogRouteCounts = { scans: 0, caughtUp: 0, failed: 0 };
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly deps: LogRoutesDeps,
    private readonly log: Logger,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 1_000);
    this.sweeper.unref();
  }

  /** Room channels subscribed now. */
  size(): number {
    return this.rooms.size;
  }

  route(message: AdapterMessage): { channel: string; readBack: boolean } | undefined {
    const rooms = routedRooms(message);
    if (!rooms || rooms.length !== 1 || maySocketId(rooms[0])) return undefined;
    const state = this.rooms.get(roomKey(message.nsp, rooms[0]));
    return { channel: state?.channel ?? this.deps.channels.logRoom(message.nsp, rooms[0]), readBack: state?.confirmedAt !== undefined };
  }

  wants(channel: string): boolean {
    return this.byChannel.has(channel);
  }

  async ready(): Promise<void> {
    await this.bounded([...this.rooms.values()]);
  }

  /**
   * Workers' first joins of rooms (primary/room-routes.ts): subscribes rooms new to this host and
   * resolves with the entries the joins are owed that this host did not read live; undefined when
   * none can be.
   */
  joined(joins: RouteJoin[]): Promise<LateCatchUp[]> | undefined {
    const from = new Map<string, string>();
    for (const [nsp, room, at] of joins) {
      if (maySocketId(room)) continue;
      const state = this.want(nsp, room);
      if (state.confirmedAt !== undefined && at >= state.confirmedAt) continue;
      // The reader has not started: it will follow from the stream's end, the room subscribed by then.
      const position = this.deps.reader.positions.at(at);
      if (position === undefined) continue;
      const earlier = from.get(state.channel);
      if (earlier === undefined || compareStreamIds(position, earlier) < 0) from.set(state.channel, position);
    }
    if (from.size === 0) return undefined;
    return this.catchUp(from).then((entries = []) => {
      const out: LateCatchUp[] = [];
      for (const entry of entries) {
        const message = this.deps.late(entry);
        if (message) out.push([entry[0], message]);
      }
      this.counts.caughtUp += out.length;
      return out;
    });
  }

  /**
   * A session from another host, with `rooms`, resumes from shared-log id `from` here: its rooms
   * are subscribed, and those this host's log does not hold since `from` are scanned from there and
   * logged (its replay is cut from the log next).
   */
  async cover(nsp: string, rooms: string[], from: string): Promise<void> {
    const starts = new Map<string, string>();
    for (const room of rooms) {
      if (maySocketId(room)) continue;
      const state = this.want(nsp, room);
      state.pinnedUntil = Date.now() + TAKEOVER_PIN_MS;
      if (state.coveredFrom === undefined || compareStreamIds(state.coveredFrom, from) > 0) starts.set(state.channel, from);
    }
    if (starts.size === 0) return;
    const entries = await this.catchUp(starts);
    // Replaying without them would hide a gap: the takeover is refused instead (a fresh session).
    if (!entries) throw new Error(`could not read the shared log for ${starts.size} room(s) of the session`);
    for (const entry of entries) if (this.deps.late(entry)) this.counts.caughtUp++;
  }

  /** The subscribing side went down: rooms are subscribed again on the next connection, and joins meanwhile wait for that. */
  subscriberDown(): void {
    for (const state of this.rooms.values()) {
      if (state.confirmedAt === undefined) continue;
      state.confirmedAt = undefined;
      state.ready = new Promise((resolve) => (state.settle = resolve));
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const state of this.rooms.values()) state.settle();
  }

  /**
   * Scans from each channel's start (the earliest), once every channel is subscribed; keeps each
   * channel's entries after its own start and records what the log now covers. Undefined when
   * the scan failed.
   */
  private async catchUp(starts: Map<string, string>): Promise<RawEntry[] | undefined> {
    const states = [...starts.keys()].map((channel) => this.byChannel.get(channel)).filter((s): s is RoomState => s !== undefined);
    await this.bounded(states);
    let from: string | undefined;
    for (const start of starts.values()) if (from === undefined || compareStreamIds(start, from) < 0) from = start;
    this.counts.scans++;
    let entries: RawEntry[];
    try {
      entries = await this.deps.reader.scan(from, [...starts.keys()]);
    } catch (err) {
      this.counts.failed++;
      this.log.warn({ err, rooms: starts.size }, "room catch-up failed: joins answered without it (their first broadcasts may be missing), takeovers refused");
      return undefined;
    }
    for (const state of states) {
      const start = starts.get(state.channel)!;
      if (state.coveredFrom === undefined || compareStreamIds(start, state.coveredFrom) < 0) state.coveredFrom = start;
    }
    return entries.filter(([id, fields]) => {
      const start = starts.get(routedChannel(fields) ?? "");
      return start !== undefined && compareStreamIds(id, start) > 0;
    });
  }

  private bounded(states: RoomState[]): Promise<void> {
    if (states.every((state) => state.confirmedAt !== undefined)) return Promise.resolve();
    return boundedWait(Promise.all(states.map((state) => state.ready)), SUBSCRIBE_TIMEOUT_MS, () =>
      this.log.warn({ rooms: states.length }, "room SUBSCRIBE unanswered: going on without it"),
    );
  }

  /** The room's state, subscribing it if new; it is wanted again if it was lingering. */
  private want(nsp: string, room: string): RoomState {
    const key = roomKey(nsp, room);
    let state = this.rooms.get(key);
    if (!state) {
      let settle!: () => void;
      const ready = new Promise<void>((resolve) => (settle = resolve));
      state = { nsp, room, channel: this.deps.channels.logRoom(nsp, room), ready, settle };
      this.rooms.set(key, state);
      this.byChannel.set(state.channel, state);
      const subscribed = state;
      this.deps.redis.subscribe(state.channel, this.deps.reader.onFrame, () => {
        if (this.rooms.get(key) !== subscribed) return;
        subscribed.confirmedAt = process.hrtime.bigint();
        subscribed.settle();
      });
    }
    state.idleSince = undefined;
    return state;
  }

  /** Unsubscribes rooms idle past the linger (checked again: a holder may have come back). */
  private sweep(): void {
    const now = Date.now();
    for (const [key, state] of this.rooms) {
      if (this.deps.holds(state.nsp, state.room) || (state.pinnedUntil ?? 0) > now) {
        state.idleSince = undefined;
        continue;
      }
      state.idleSince ??= now;
      if (now - state.idleSince < LINGER_MS) continue;
      this.rooms.delete(key);
      this.byChannel.delete(state.channel);
      state.settle();
      this.deps.redis.unsubscribe(state.channel);
    }
  }
}

function roomKey(nsp: string, room: string): string {
  return `${nsp}\0${room}`;
}
