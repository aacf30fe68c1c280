import { decode, encode } from "notepack.io";
import { routedRooms, type RouteJoin, type RouteLeave, type Stamp } from "../../primary/room-routes";
import type { Logger } from "../../observability/logger";
import { ADAPTER_SOURCE, type AdapterMessage } from "../cluster/relay";
import type { Channels } from "./channels";
import type { RedisClient } from "./client";
import { HeardLog } from "./heard-log";
import { HostRetention } from "./host-retention";

/**
 * A catch-up request unanswered this long is given up on (the publisher died or never heard it):
 * the bridge timeout, after which a silent host is gone anyway.
 */
const ANSWER_TIMEOUT_MS = 3_000;

/** A room broadcast from another host that a joining worker missed: placed by its publisher's order (worker/data-link.ts). */
export type RemoteCatchUp = [origin: string, seq: number, message: AdapterMessage];

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
  /** Catch-up requests this host sent (first joins of a room), answered (for others), and the broadcasts they brought. */
  requested: number;
  answered: number;
  caughtUp: number;
}

/** A catch-up request on the bus: the rooms joined, and per publisher the newest number heard at the join. */
export interface CatchUpRequest {
  b: string;
  cr: number;
  r: Array<[nsp: string, room: string]>;
  h: Record<string, number>;
}
/** The answer, on the asker's own channel: the publisher's kept room broadcasts after that number. */
export interface CatchUpAnswer {
  b: string;
  ca: number;
  items: Buffer[];
}

export interface HostRoutesDeps {
  bridgeId: string;
  channels: Channels;
  /** The current subscribing connection (replaced after a drop). */
  sub(): RedisClient;
  /** Publishes through the bridge's outbox (kept in order with the bus); `onReceivers` gets PUBLISH's reply. */
  send(channel: string, payload: Buffer, onReceivers?: (receivers: number) => void): void;
  /** Other bridges heard from lately. */
  publishers(): string[];
  /** Delivers a broadcast from another host to this host's workers. */
  deliver(message: AdapterMessage): void;
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
}

interface Asked {
  waiting: Set<string>;
  items: Array<{ origin: string; seq: number; key: string; message: AdapterMessage }>;
  done(): void;
}

/**
 * Routing of room broadcasts across hosts, in bridge mode with --recovery off (pub/sub). A
 * broadcast to exactly one room (a socket id counts as one) goes to that room's channel, which a
 * host subscribes to while one of its workers holds a member (primary/room-routes.ts knows which);
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
  /** Room channels subscribed (or being subscribed) on the current connection. */
  private readonly subscribed = new Set<string>();
  private readonly dirty = new Set<string>();
  private scheduled = false;
  private busSeq = 0;
  private nextId = 0;
  private readonly asked = new Map<number, Asked>();
  readonly counts: HostRouteCounts = { published: 0, routed: 0, skipped: 0, received: 0, requested: 0, answered: 0, caughtUp: 0 };
  private readonly onRoomFrame = (raw: Buffer): void => this.receive(raw);

  constructor(
    private readonly deps: HostRoutesDeps,
    private readonly log: Logger,
  ) {
    this.retention = new HostRetention(deps.maxBytes);
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
    for (const asked of this.asked.values()) if (asked.waiting.delete(bridge) && asked.waiting.size === 0) asked.done();
  }

  /**
   * A broadcast of a local worker numbered `seq`: published on its room's channel (true), or left
   * to the bus (false) when it is not a broadcast to exactly one room.
   */
  route(message: AdapterMessage, seq: number): boolean {
    const rooms = routedRooms(message);
    if (!rooms || rooms.length !== 1) return false;
    const [room] = rooms;
    const payload = encode({ b: this.deps.bridgeId, m: message, s: seq });
    this.retention.keep(seq, roomKey(message.nsp, room), payload);
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
    return Promise.all(needs.map(({ state }) => state.ready)).then(() => this.catchUp(needs.map(({ join }) => join)));
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
   * The subscribing connection is new (first connect, or replaced after a drop: Redis restarted or
   * cut it): every room is subscribed again, and joins meanwhile wait for it.
   */
  resubscribe(): void {
    this.subscribed.clear();
    for (const [key, state] of this.rooms) {
      if (state.confirmedAt !== undefined) {
        const fresh = newState(state.nsp, state.room);
        fresh.wanted = state.wanted;
        this.rooms.set(key, fresh);
      }
      this.markDirty(key);
    }
  }

  /** Another host asks for room broadcasts of this one it missed at a join. */
  onRequest(request: CatchUpRequest): void {
    if (!Array.isArray(request.r) || typeof request.cr !== "number") return;
    const keys = new Set(request.r.map(([nsp, room]) => roomKey(String(nsp), String(room))));
    const since = typeof request.h?.[this.deps.bridgeId] === "number" ? request.h[this.deps.bridgeId] : 0;
    const items = this.retention.since(since, keys);
    this.counts.answered++;
    this.deps.send(this.deps.channels.responses(request.b), encode({ b: this.deps.bridgeId, ca: request.cr, items } satisfies CatchUpAnswer));
  }

  onAnswer(answer: CatchUpAnswer): void {
    const asked = this.asked.get(answer.ca);
    if (!asked || !Array.isArray(answer.items)) return;
    for (const raw of answer.items) {
      const envelope = decodeRoomFrame(raw, this.log);
      if (!envelope) continue;
      const rooms = routedRooms(envelope.m);
      if (rooms?.length !== 1) continue;
      asked.items.push({ origin: envelope.b, seq: envelope.s, key: roomKey(envelope.m.nsp, rooms[0]), message: tagged(envelope) });
    }
    if (asked.waiting.delete(answer.b) && asked.waiting.size === 0) asked.done();
  }

  close(): void {
    for (const asked of this.asked.values()) asked.done();
  }

  private catchUp(joins: RouteJoin[]): Promise<RemoteCatchUp[]> {
    const publishers = this.deps.publishers();
    if (publishers.length === 0) return Promise.resolve([]);
    let since = joins[0][2];
    for (const [, , at] of joins) if (at < since) since = at;
    const heard: Record<string, number> = {};
    for (const bridge of publishers) heard[bridge] = this.heardLog.at(bridge, since);
    const id = ++this.nextId;
    const request: CatchUpRequest = { b: this.deps.bridgeId, cr: id, r: joins.map(([nsp, room]) => [nsp, room]), h: heard };
    return new Promise<Asked["items"]>((resolve) => {
      const asked: Asked = {
        waiting: new Set(publishers),
        items: [],
        done: () => {
          clearTimeout(timer);
          this.asked.delete(id);
          resolve(asked.items);
        },
      };
      const timer = setTimeout(() => {
        this.log.warn({ waiting: [...asked.waiting], rooms: joins.length }, "catch-up request for room joins unanswered: going on without those hosts");
        asked.done();
      }, ANSWER_TIMEOUT_MS);
      timer.unref();
      this.asked.set(id, asked);
      this.counts.requested++;
      this.deps.send(this.deps.channels.bus, encode(request));
    }).then((items) => {
      // Each join gets only what was published after it (per publisher, by what was heard then).
      const out: RemoteCatchUp[] = [];
      const seen = new Set<string>();
      for (const item of items) {
        const wanted = joins.some(([nsp, room, at]) => roomKey(nsp, room) === item.key && item.seq > this.heardLog.at(item.origin, at));
        const id = `${item.origin}\0${item.seq}`;
        if (!wanted || seen.has(id)) continue;
        seen.add(id);
        out.push([item.origin, item.seq, item.message]);
      }
      this.counts.caughtUp += out.length;
      return out;
    });
  }

  private receive(raw: Buffer): void {
    const envelope = decodeRoomFrame(raw, this.log);
    if (!envelope || envelope.b === this.deps.bridgeId) return;
    this.counts.received++;
    this.heardLog.heard(envelope.b, envelope.s);
    this.deps.deliver(tagged(envelope));
  }

  private markDirty(key: string): void {
    this.dirty.add(key);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Subscribes and unsubscribes what changed this turn, in one command each. */
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
      } else if (!this.subscribed.has(channel)) {
        this.subscribed.add(channel);
        add.push(state);
      }
    }
    this.dirty.clear();
    const sub = this.deps.sub();
    if (drop.length > 0) sub.unsubscribe(drop, this.onRoomFrame, true).catch((err: unknown) => this.log.debug({ err, rooms: drop.length }, "room unsubscribe failed"));
    if (add.length === 0) return;
    const confirm = (ok: boolean) => (err?: unknown): void => {
      if (!ok) this.log.warn({ err, rooms: add.length }, "room subscribe failed: joins go on, broadcasts to those rooms reach this host once the subscriber is back");
      const now = process.hrtime.bigint();
      for (const state of add) {
        if (ok && this.rooms.get(roomKey(state.nsp, state.room)) === state) state.confirmedAt = now;
        state.settle();
      }
    };
    sub.subscribe(add.map((s) => this.deps.channels.room(s.nsp, s.room)), this.onRoomFrame, true).then(confirm(true), confirm(false));
  }
}

function roomKey(nsp: string, room: string): string {
  return `${nsp}\0${room}`;
}

function newState(nsp: string, room: string): RoomState {
  let settle!: () => void;
  const ready = new Promise<void>((resolve) => (settle = resolve));
  return { nsp, room, wanted: true, ready, settle };
}

/** A broadcast from another host as workers get it: tagged with its publisher and number, to place catch-ups by. */
function tagged(envelope: { b: string; m: AdapterMessage; s: number }): AdapterMessage {
  return { ...envelope.m, source: ADAPTER_SOURCE, sfo: envelope.b, sfs: envelope.s };
}

function decodeRoomFrame(raw: Buffer, log: Logger): { b: string; m: AdapterMessage; s: number } | undefined {
  try {
    const envelope = decode(raw) as { b?: unknown; m?: unknown; s?: unknown };
    if (typeof envelope?.b !== "string" || typeof envelope.s !== "number" || typeof envelope.m !== "object" || envelope.m === null) return undefined;
    return envelope as { b: string; m: AdapterMessage; s: number };
  } catch (err) {
    log.warn({ err }, "undecodable room broadcast from another host");
    return undefined;
  }
}
