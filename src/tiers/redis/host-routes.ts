import { encode } from "notepack.io";
import { routedRooms, type RouteJoin, type RouteLeave, type Stamp } from "../../primary/room-routes";
import type { Logger } from "../../observability/logger";
import type { AdapterMessage } from "../cluster/relay";
import type { Channels } from "./channels";
import type { Gap } from "./gap-detector";
import { boundedWait } from "./bounded-wait";
import { HeardLog } from "./heard-log";
import { decodeRoomFrame, HostCatchUp, roomKey, tagged, type CatchUpAnswer, type CatchUpRequest, type RemoteCatchUp } from "./host-catchup";
import { HostRetention } from "./host-retention";
import { roomGap, RoomNumbers } from "./room-numbers";
import { maySocketId } from "./socket-id-rooms";

export type { CatchUpAnswer, CatchUpRequest, RemoteCatchUp };

/** A join waits this long at most for its room's SUBSCRIBE (which answers, or fails with its connection, well before). */
const SUBSCRIBE_TIMEOUT_MS = 5_000;

/** Room broadcasts on the sending and receiving side, for metrics. */
export interface HostRouteCounts {
  /** Room broadcasts this host published on a room channel. */
  published: number;
  /** Other hosts they reached (PUBLISH's receiver count, less this host's own subscription). */
  routed: number;
  /** Other known hosts they did not reach (no member there). */
  skipped: number;
  /** Room broadcasts from other hosts received on a room channel. */
  received: number;
}

export interface HostRoutesDeps {
  bridgeId: string;
  channels: Channels;
  /** Subscribes on the transport (kept across new connections); `onSubscribed` each time Redis confirms it. */
  subscribe(channel: string, listener: (raw: Buffer) => void, onSubscribed: () => void): void;
  unsubscribe(channel: string): void;
  /** Publishes through the bridge's outbox (kept in order with the bus); `onReceivers` gets PUBLISH's reply. */
  send(channel: string, payload: Buffer, onReceivers?: (receivers: number) => void): void;
  /** Other bridges heard from lately. */
  publishers(): string[];
  /** Delivers a broadcast from another host to this host's workers. */
  deliver(message: AdapterMessage): void;
  /** Room broadcasts from another host that never reached this one (its numbers on the room skipped). */
  onGap(gap: Gap): void;
  maxBytes: number;
}

interface RoomState {
  nsp: string;
  room: string;
  /** False once its last member left, until the unsubscribe goes out. */
  wanted: boolean;
  /** When SUBSCRIBE was confirmed: a join stamped later misses nothing published to the room. */
  confirmedAt?: Stamp;
  ready: Promise<void>;
  settle(): void;
  /** Publisher -> the newest of its numbers on this room received here (kept across a new subscriber connection). */
  heard: Map<string, number>;
}

/**
 * Routing of room broadcasts across hosts, in bridge mode with --recovery off (pub/sub). A
 * broadcast to exactly one room goes to that room's channel, which a host subscribes to while
 * one of its workers holds a member (primary/room-routes.ts knows which); socket ids' rooms stay
 * on the bus (socket-id-rooms.ts);
 * so Redis delivers it to the hosts with members only, and a host without any spends nothing on
 * it. Everything else (broadcasts to several rooms, to all, except-only, with acks; requests,
 * heartbeats, emitter traffic) stays on the bus.
 *
 * No loss at a join. A broadcast emitted on another host after `socket.join()` returned may be
 * published before this host's SUBSCRIBE took effect. So the worker's announcement of a join
 * (stamped with the host's clock before `join()` returned, worker holding its link from then) is
 * answered only once the room's SUBSCRIBE is confirmed and every publisher heard from has answered
 * a catch-up request: "send me your room broadcasts numbered after N", N being the newest of its
 * numbers this host had heard when the join happened ({@link HeardLog}). A broadcast emitted after
 * the join was published after that one was heard here, so its number is higher: it is in the
 * answer, or (published after the SUBSCRIBE) it came directly and the worker drops the copy.
 *
 * Order per publisher: every broadcast from another host reaches the workers tagged with its
 * publisher and number; the worker places each caught-up one before the first broadcast it holds
 * from that publisher with a higher number (worker/data-link.ts), for a client in several rooms
 * and for room vs all broadcasts alike. That needs one publisher's messages on the bus and the
 * room channels to arrive in publishing order, which one Redis node gives (one publishing and one
 * subscribing connection); on Redis Cluster the channels live on different nodes (see README).
 */
export class HostRoutes {
  private readonly heardLog = new HeardLog();
  private readonly retention: HostRetention;
  private readonly rooms = new Map<string, RoomState>();
  /** Room channels subscribed on the transport (which keeps them across connections). */
  private readonly subscribed = new Set<string>();
  private readonly dirty = new Set<string>();
  private scheduled = false;
  private busSeq = 0;
  readonly counts: HostRouteCounts = { published: 0, routed: 0, skipped: 0, received: 0 };
  /** Catch-ups after first joins, asked of and answered for other hosts. */
  readonly catchUps: HostCatchUp;
  private readonly onRoomFrame = (raw: Buffer): void => this.receive(raw);
  private readonly numbers = new RoomNumbers();

  constructor(
    private readonly deps: HostRoutesDeps,
    private readonly log: Logger,
  ) {
    this.retention = new HostRetention(deps.maxBytes);
    this.catchUps = new HostCatchUp(deps.bridgeId, deps.channels, (channel, payload) => deps.send(channel, payload), this.heardLog, this.retention, log);
  }

  /** Number for the next broadcast on the bus: the gap detector counts these, not room ones, as room ones may rightly skip a host. */
  nextBusSeq(): number {
    return ++this.busSeq;
  }

  get currentBusSeq(): number {
    return this.busSeq;
  }

  /** Room broadcasts kept for catch-ups, and how many had to go early. */
  retained(): { kept: number; dropped: number } {
    return { kept: this.retention.size(), dropped: this.retention.dropped };
  }

  /** A broadcast numbered `seq` on this bridge heard from another (bus broadcast, heartbeat or room broadcast). */
  heard(bridge: string, seq: number): void {
    this.heardLog.heard(bridge, seq);
  }

  bridgeGone(bridge: string): void {
    this.heardLog.forget(bridge);
    this.catchUps.bridgeGone(bridge);
  }

  /**
   * A broadcast of a local worker numbered `seq`: published on its room's channel (true), or left
   * to the bus (false) when it is not a broadcast to exactly one room.
   */
  route(message: AdapterMessage, seq: number): boolean {
    const rooms = routedRooms(message);
    if (!rooms || rooms.length !== 1) return false;
    const [room] = rooms;
    // A socket's own id room: on the bus, as no host subscribes to it (see socket-id-rooms.ts).
    if (maySocketId(room)) return false;
    const key = roomKey(message.nsp, room);
    // `r`: this broadcast's number on its room, for the receivers' gap count (`s` has holes by design).
    const r = this.numbers.next(key);
    const payload = encode({ b: this.deps.bridgeId, m: message, s: seq, r });
    this.retention.keep(seq, key, payload);
    this.counts.published++;
    const self = this.rooms.has(roomKey(message.nsp, room)) ? 1 : 0;
    this.deps.send(this.deps.channels.room(message.nsp, room), payload, (receivers) => {
      const routed = Math.max(0, receivers - self);
      this.counts.routed += routed;
      this.counts.skipped += Math.max(0, this.deps.publishers().length - routed);
    });
    return true;
  }

  /**
   * Joins a worker announced (primary/primary.ts, after RoomRoutes took them): subscribes to rooms
   * new to this host, and resolves with what the joins missed from other hosts once every room is
   * subscribed and every publisher answered; undefined when nothing can have been missed.
   */
  joined(joins: RouteJoin[]): Promise<RemoteCatchUp[]> | undefined {
    const needs: Array<{ join: RouteJoin; state: RoomState }> = [];
    for (const join of joins) {
      const [nsp, room, at] = join;
      // Its broadcasts come on the bus, which reaches this host whether or not it subscribed anything.
      if (maySocketId(room)) continue;
      const key = roomKey(nsp, room);
      let state = this.rooms.get(key);
      if (!state) {
        state = newState(nsp, room);
        this.rooms.set(key, state);
        this.markDirty(key);
      } else if (!state.wanted) {
        state.wanted = true;
        this.markDirty(key);
      }
      if (state.confirmedAt !== undefined && at >= state.confirmedAt) continue;
      needs.push({ join, state });
    }
    if (needs.length === 0) return undefined;
    const subscribed = boundedWait(Promise.all(needs.map(({ state }) => state.ready)), SUBSCRIBE_TIMEOUT_MS, () =>
      this.log.warn({ rooms: needs.length }, "room SUBSCRIBE unanswered: catching up without it"),
    );
    return subscribed.then(() => this.catchUps.request(needs.map(({ join }) => join), this.deps.publishers()));
  }

  /** Rooms whose last member on this host left. */
  left(leaves: RouteLeave[]): void {
    for (const [nsp, room] of leaves) {
      const key = roomKey(nsp, room);
      const state = this.rooms.get(key);
      if (!state || !state.wanted) continue;
      state.wanted = false;
      this.markDirty(key);
    }
  }

  /** After a worker exit: rooms this host no longer holds a member of, by `has`. */
  sweep(has: (nsp: string, room: string) => boolean): void {
    this.left([...this.rooms.values()].filter((s) => s.wanted && !has(s.nsp, s.room)).map((s) => [s.nsp, s.room] as RouteLeave));
  }

  /**
   * The subscribing side went down (Redis restarted or cut it): the transport subscribes every
   * room again on its next connection, and joins meanwhile wait for that confirmation.
   */
  subscriberDown(): void {
    for (const [key, state] of this.rooms) {
      if (state.confirmedAt === undefined) continue;
      const fresh = newState(state.nsp, state.room);
      fresh.wanted = state.wanted;
      // What was lost while the subscriber was down shows as a jump in the next number received.
      fresh.heard = state.heard;
      this.rooms.set(key, fresh);
    }
  }

  onRequest(request: CatchUpRequest): void {
    this.catchUps.onRequest(request);
  }

  onAnswer(answer: CatchUpAnswer): void {
    this.catchUps.onAnswer(answer);
  }

  close(): void {
    this.catchUps.close();
  }

  private receive(raw: Buffer): void {
    const envelope = decodeRoomFrame(raw, this.log);
    if (!envelope || envelope.b === this.deps.bridgeId) return;
    this.counts.received++;
    this.heardLog.heard(envelope.b, envelope.s);
    this.countGap(envelope.b, envelope.m, (envelope as { r?: unknown }).r);
    this.deps.deliver(tagged(envelope));
  }

  /** A jump in a publisher's numbers on a room while this host was subscribed is a loss (Redis cut the subscriber, say). */
  private countGap(bridge: string, message: AdapterMessage, r: unknown): void {
    const rooms = routedRooms(message);
    const state = rooms?.length === 1 ? this.rooms.get(roomKey(message.nsp, rooms[0])) : undefined;
    if (!state || typeof r !== "number" || !Number.isSafeInteger(r)) return;
    const gap = roomGap(state.heard, bridge, r);
    if (!gap) return;
    this.log.warn({ ...gap, nsp: message.nsp, room: rooms![0] }, "room broadcasts from another host were missed");
    this.deps.onGap(gap);
  }

  private markDirty(key: string): void {
    this.dirty.add(key);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Subscribes and unsubscribes what changed this turn. */
  private flush(): void {
    this.scheduled = false;
    const add: RoomState[] = [];
    const drop: string[] = [];
    for (const key of this.dirty) {
      const state = this.rooms.get(key);
      if (!state) continue;
      const channel = this.deps.channels.room(state.nsp, state.room);
      if (!state.wanted) {
        this.rooms.delete(key);
        if (this.subscribed.delete(channel)) drop.push(channel);
        // Joined and left before it was ever subscribed: its join has nothing to wait for.
        state.settle();
      } else if (!this.subscribed.has(channel)) {
        this.subscribed.add(channel);
        add.push(state);
      }
    }
    this.dirty.clear();
    for (const channel of drop) this.deps.unsubscribe(channel);
    for (const state of add) {
      const key = roomKey(state.nsp, state.room);
      this.deps.subscribe(this.deps.channels.room(state.nsp, state.room), this.onRoomFrame, () => this.confirmed(key));
    }
  }

  /** Redis confirmed the room's subscription (again, after a new connection): later joins need no catch-up. */
  private confirmed(key: string): void {
    const state = this.rooms.get(key);
    if (!state) return;
    state.confirmedAt = process.hrtime.bigint();
    state.settle();
  }
}

function newState(nsp: string, room: string): RoomState {
  let settle!: () => void;
  const ready = new Promise<void>((resolve) => (settle = resolve));
  return { nsp, room, wanted: true, ready, settle, heard: new Map() };
}
