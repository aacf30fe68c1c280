import { decodeFrame, encodeFrame } from "../ipc/frames";
import { MessageType, type AdapterMessage } from "../tiers/cluster/relay";

/** Host-monotonic time (CLOCK_MONOTONIC: one clock for every process of the host). */
export type Stamp = bigint;
export const stampNow = (): Stamp => process.hrtime.bigint();

/** A room of a namespace the first member of a worker joined (`at`: when) or its last one left. */
export type RouteJoin = [nsp: string, room: string, at: Stamp];
export type RouteLeave = [nsp: string, room: string];

/** A broadcast a worker missed, to deliver right after the `at`-th frame the primary sent it. */
export interface CatchUp {
  at: number;
  /** The primary's routing order, for catch-ups of different answers with the same `at`. */
  seq: number;
  message: unknown;
}

/**
 * How long skipped broadcasts are kept at most for a join announcement still on its way (see
 * {@link RoomRoutes}); they go as soon as every worker they skipped announced past them, which
 * workers do at least every 100 ms (tiers/cluster/room-announcer.ts).
 */
const RETAIN_NS = 5_000_000_000n;
/** ...and at most this many, and --max-channel-bytes of them (the oldest go first; {@link RoomRoutes.lateJoins} counts what that costs). */
const RETAIN_MAX = 50_000;

interface Skipped {
  stamp: Stamp;
  seq: number;
  nsp: string;
  rooms: string[];
  /**
   * The broadcast as the frame it went out in: bytes, decoded only for a catch-up. Decoded, a
   * deeply nested payload holds many times its encoded size, which the byte bound would not see.
   */
  frame: Buffer;
  /** Worker -> frames the primary had sent it when this broadcast skipped it. */
  workers: Map<number, number>;
}

export interface RouteCounts {
  routed: number;
  skipped: number;
}

/**
 * Which workers of this host a room broadcast goes to: those holding a member of one of its rooms
 * (a socket id is a room of one). Workers announce, batched per event-loop turn, the rooms whose
 * first member they gained and whose last member they lost; everything else (broadcasts to all or
 * with acks, requests, heartbeats) goes to every worker, as the cluster adapter's protocol expects.
 *
 * No loss at a join. A broadcast emitted after `socket.join()` returned on worker A may reach the
 * primary before A's announcement: the two travel on different links, and another worker can be
 * told of the join (through a client, Redis, anything) and emit before the primary has read A's
 * link. So the primary keeps the room broadcasts it skipped some worker for, stamped with the
 * host's monotonic clock when it routed them, and A stamps each join with the same clock before
 * `join()` returns. (Kept until that worker has announced every join up to their stamp, as each
 * announcement says, idle workers ticking every 100 ms; at most 5 s.) A broadcast emitted after the join was routed after it, so its
 * stamp is later than the join's: when the announcement arrives, every skipped broadcast for that
 * room stamped at or after the join is sent to A. One routed before the join was emitted before it
 * (no promise is owed; sending it too would only repeat today's "in flight at the join" case, so the
 * cut is exact rather than merely safe).
 *
 * Order is kept too. From the join until the primary's answer A holds every frame it receives, and
 * the answer places each caught-up broadcast after the frame it would have followed (the count of
 * frames the primary had sent A when it skipped it). A's clients then see what they would have seen
 * had A been routed all along, which keeps recovery offsets in order. See tiers/cluster/room-announcer.ts.
 */
export class RoomRoutes {
  /** nsp -> room -> workers with a member. */
  private readonly members = new Map<string, Map<string, Set<number>>>();
  /** Worker -> nsp -> restores in flight: route the whole namespace there until answered. */
  private readonly restoring = new Map<number, Map<string, number>>();
  /** `${worker}\0${request id}` -> nsp of the restores in flight. */
  private readonly asked = new Map<string, string>();
  /** `${worker}\0${nsp}\0${room}` -> expiry (ms): rooms of a restored session whose socket is still to connect. */
  private readonly pinned = new Map<string, number>();
  private readonly skipped: Skipped[] = [];
  private head = 0;
  private readonly counts = new Map<number, RouteCounts>();
  /** Joins whose catch-up may be incomplete because skipped broadcasts had to go before it arrived. */
  lateJoins = 0;
  /** Dropped while a worker could still announce a join before it: a catch-up from before this may be short. */
  private newestDropped: Stamp = -1n;
  /** Worker -> every join it stamped up to this time has been announced (its last announcement's `upTo`). */
  private readonly announcedUpTo = new Map<number, Stamp>();
  private seq = 0;

  private retainedBytes = 0;

  /**
   * @param sentTo frames the primary has written to a worker's data link
   * @param maxBytes bound on the skipped broadcasts kept, by encoded size (--max-channel-bytes:
   *   what the primary may hold unsent for one worker before giving up on it)
   */
  constructor(
    private readonly sentTo: (worker: number) => number,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {}

  /**
   * The workers of `workers` (bar `except`, the sender) that `message` goes to; records what it
   * skipped. A broadcast from another host has no sender here.
   */
  targets(message: AdapterMessage, workers: number[], except: number | undefined, frame?: Buffer): number[] {
    const rooms = routedRooms(message);
    if (!rooms) return except === undefined ? workers : workers.filter((w) => w !== except);
    const to: number[] = [];
    let skipped: Skipped | undefined;
    for (const worker of workers) {
      if (worker === except) continue;
      const counts = this.countsOf(worker);
      if (this.wants(worker, message.nsp, rooms)) {
        to.push(worker);
        counts.routed++;
        continue;
      }
      counts.skipped++;
      if (!skipped) {
        skipped = { stamp: stampNow(), seq: ++this.seq, nsp: message.nsp, rooms, frame: frame ?? encodeFrame(message), workers: new Map() };
      }
      skipped.workers.set(worker, this.sentTo(worker));
    }
    if (skipped) this.retain(skipped);
    return to;
  }

  /**
   * Applies a worker's announcement; returns what it missed of the rooms it joined, in the order
   * the primary routed them.
   */
  announce(worker: number, joins: RouteJoin[], leaves: RouteLeave[], upTo?: Stamp): CatchUp[] {
    if (upTo !== undefined) this.announcedUpTo.set(worker, upTo);
    for (const [nsp, room] of leaves) {
      const set = this.members.get(nsp)?.get(room);
      if (!set) continue;
      set.delete(worker);
      if (set.size === 0) this.members.get(nsp)!.delete(room);
    }
    const fresh: RouteJoin[] = [];
    for (const join of joins) {
      const [nsp, room] = join;
      let rooms = this.members.get(nsp);
      if (!rooms) this.members.set(nsp, (rooms = new Map()));
      let set = rooms.get(room);
      if (!set) rooms.set(room, (set = new Set()));
      if (set.has(worker)) continue;
      set.add(worker);
      fresh.push(join);
    }
    return fresh.length === 0 ? [] : this.catchUp(worker, fresh);
  }

  /**
   * Worker `worker` asks to restore a session of `nsp` (its request `id`): until answered, it gets
   * every room broadcast of `nsp`, as the answer's missed packets stop where the answer is cut.
   */
  restoreAsked(worker: number, id: number, nsp: string): void {
    this.asked.set(`${worker}\0${id}`, nsp);
    let byNsp = this.restoring.get(worker);
    if (!byNsp) this.restoring.set(worker, (byNsp = new Map()));
    byNsp.set(nsp, (byNsp.get(nsp) ?? 0) + 1);
  }

  /**
   * ...and is answered: the session's `rooms` stay routed to it for `ttlMs`, while its socket
   * connects and announces them itself.
   */
  restoreAnswered(worker: number, id: number, rooms: string[] | undefined, ttlMs: number): void {
    const nsp = this.asked.get(`${worker}\0${id}`);
    if (nsp === undefined) return;
    this.asked.delete(`${worker}\0${id}`);
    const byNsp = this.restoring.get(worker);
    const left = (byNsp?.get(nsp) ?? 1) - 1;
    if (left > 0) byNsp!.set(nsp, left);
    else byNsp?.delete(nsp);
    const expires = Date.now() + ttlMs;
    for (const room of rooms ?? []) this.pinned.set(`${worker}\0${nsp}\0${room}`, expires);
  }

  /** Whether `worker` holds a member of `room` (as announced). */
  workerHas(worker: number, nsp: string, room: string): boolean {
    return this.members.get(nsp)?.get(room)?.has(worker) ?? false;
  }

  /** Whether some worker of this host holds a member of `room` (host-level interest, tiers/redis/host-routes.ts). */
  hostHas(nsp: string, room: string): boolean {
    return this.members.get(nsp)?.has(room) ?? false;
  }

  /** Skipped broadcasts kept now for joins that may still be announced. */
  retained(): number {
    return this.skipped.length - this.head;
  }

  /** Frames routed to and skipped for each worker since it started. */
  routeCounts(): Map<number, RouteCounts> {
    return this.counts;
  }

  workerGone(worker: number): void {
    for (const rooms of this.members.values()) {
      for (const [room, set] of rooms) if (set.delete(worker) && set.size === 0) rooms.delete(room);
    }
    this.restoring.delete(worker);
    for (const key of this.asked.keys()) if (key.startsWith(`${worker}\0`)) this.asked.delete(key);
    for (const key of this.pinned.keys()) if (key.startsWith(`${worker}\0`)) this.pinned.delete(key);
    this.counts.delete(worker);
    this.announcedUpTo.delete(worker);
  }

  private wants(worker: number, nsp: string, rooms: string[]): boolean {
    const members = this.members.get(nsp);
    if (members) for (const room of rooms) if (members.get(room)?.has(worker)) return true;
    if (this.restoring.get(worker)?.get(nsp)) return true;
    if (this.pinned.size === 0) return false;
    for (const room of rooms) {
      const key = `${worker}\0${nsp}\0${room}`;
      const expires = this.pinned.get(key);
      if (expires === undefined) continue;
      if (expires >= Date.now()) return true;
      this.pinned.delete(key);
    }
    return false;
  }

  private countsOf(worker: number): RouteCounts {
    let counts = this.counts.get(worker);
    if (!counts) this.counts.set(worker, (counts = { routed: 0, skipped: 0 }));
    return counts;
  }

  private retain(entry: Skipped): void {
    this.skipped.push(entry);
    this.retainedBytes += entry.frame.length;
    const cutoff = entry.stamp - RETAIN_NS;
    while (this.head < this.skipped.length) {
      const oldest = this.skipped[this.head];
      // Settled for a worker once it announced every join up to the broadcast's stamp.
      for (const worker of oldest.workers.keys()) if ((this.announcedUpTo.get(worker) ?? -1n) >= oldest.stamp) oldest.workers.delete(worker);
      if (oldest.workers.size > 0) {
        if (oldest.stamp >= cutoff && this.skipped.length - this.head <= RETAIN_MAX && this.retainedBytes <= this.maxBytes) break;
        this.newestDropped = oldest.stamp;
      }
      this.retainedBytes -= oldest.frame.length;
      this.skipped[this.head++] = undefined as unknown as Skipped;
    }
    // Compact now and then rather than shift() per broadcast.
    if (this.head > 1024 && this.head * 2 > this.skipped.length) {
      this.skipped.splice(0, this.head);
      this.head = 0;
    }
  }

  private catchUp(worker: number, joins: RouteJoin[]): CatchUp[] {
    const joinedAt = new Map<string, Stamp>();
    let since = joins[0][2];
    for (const [nsp, room, at] of joins) {
      joinedAt.set(`${nsp}\0${room}`, at);
      if (at < since) since = at;
    }
    // A skipped broadcast stamped after the join is gone already (the announcement came later than
    // RETAIN_NS, or more than RETAIN_MAX broadcasts were skipped meanwhile): this catch-up may be short.
    if (this.newestDropped >= since) this.lateJoins++;
    const items: CatchUp[] = [];
    // Newest first, down to the earliest join: a few milliseconds' worth of skipped broadcasts.
    for (let i = this.skipped.length - 1; i >= this.head; i--) {
      const entry = this.skipped[i];
      if (entry.stamp < since) break;
      const at = entry.workers.get(worker);
      if (at === undefined) continue;
      if (!entry.rooms.some((room) => (joinedAt.get(`${entry.nsp}\0${room}`) ?? entry.stamp + 1n) <= entry.stamp)) continue;
      entry.workers.delete(worker);
      const message = decodeFrame(entry.frame);
      if (message !== undefined) items.push({ at, seq: entry.seq, message });
    }
    return items.reverse();
  }
}

/** The rooms a message is routed by, or undefined when it goes to every worker. */
export function routedRooms(message: AdapterMessage): string[] | undefined {
  if (message.type !== MessageType.BROADCAST) return undefined;
  const data = message.data as { requestId?: unknown; opts?: { rooms?: unknown } } | undefined;
  // A broadcast with acks (requestId) waits for an answer from every worker.
  if (!data || data.requestId !== undefined) return undefined;
  const rooms = data.opts?.rooms;
  if (!Array.isArray(rooms) || rooms.length === 0) return undefined;
  // Workers announce rooms as strings; the stock cluster adapter publishes them as the app gave them.
  return rooms.map(String);
}
