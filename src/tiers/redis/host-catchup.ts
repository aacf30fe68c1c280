import { decode, encode } from "notepack.io";
import { routedRooms, type RouteJoin } from "../../primary/room-routes";
import type { Logger } from "../../observability/logger";
import { ADAPTER_SOURCE, type AdapterMessage } from "../cluster/relay";
import type { Channels } from "./channels";
import type { HeardLog } from "./heard-log";
import type { HostRetention } from "./host-retention";

/**
 * A catch-up request unanswered this long is given up on (the publisher died, or started after
 * the request went out): the bridge timeout, after which a silent host is gone anyway.
 */
const ANSWER_TIMEOUT_MS = 3_000;

/** A room broadcast from another host that a joining worker missed: placed by its publisher's order (worker/data-link.ts). */
export type RemoteCatchUp = [origin: string, seq: number, message: AdapterMessage];

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

export interface CatchUpCounts {
  requested: number;
  answered: number;
  caughtUp: number;
}

interface Asked {
  waiting: Set<string>;
  items: Array<{ origin: string; seq: number; key: string; message: AdapterMessage }>;
  done(): void;
}

/**
 * Both ends of the catch-up after a first join (see host-routes.ts): asks every publisher heard
 * from for the room broadcasts numbered after what this host had heard of it at the join, and
 * answers such requests of other hosts from what this one keeps ({@link HostRetention}).
 */
export class HostCatchUp {
  private nextId = 0;
  private readonly asked = new Map<number, Asked>();
  readonly counts: CatchUpCounts = { requested: 0, answered: 0, caughtUp: 0 };

  constructor(
    private readonly bridgeId: string,
    private readonly channels: Channels,
    private readonly send: (channel: string, payload: Buffer) => void,
    private readonly heard: HeardLog,
    private readonly retention: HostRetention,
    private readonly log: Logger,
  ) {}

  /** What `joins` missed from `publishers`, once each answered (or ANSWER_TIMEOUT_MS passed). */
  request(joins: RouteJoin[], publishers: string[]): Promise<RemoteCatchUp[]> {
    if (publishers.length === 0) return Promise.resolve([]);
    let since = joins[0][2];
    for (const [, , at] of joins) if (at < since) since = at;
    const heard: Record<string, number> = {};
    for (const bridge of publishers) heard[bridge] = this.heard.at(bridge, since);
    const id = ++this.nextId;
    const request: CatchUpRequest = { b: this.bridgeId, cr: id, r: joins.map(([nsp, room]) => [nsp, room]), h: heard };
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
      this.send(this.channels.bus, encode(request));
    }).then((items) => this.select(joins, items));
  }

  /** Another host asks for room broadcasts of this one it missed at a join: always answered, if with none. */
  onRequest(request: CatchUpRequest): void {
    if (!Array.isArray(request.r) || typeof request.cr !== "number") return;
    const keys = new Set(request.r.map(([nsp, room]) => roomKey(String(nsp), String(room))));
    const since = typeof request.h?.[this.bridgeId] === "number" ? request.h[this.bridgeId] : 0;
    const items = this.retention.since(since, keys);
    this.counts.answered++;
    this.send(this.channels.responses(request.b), encode({ b: this.bridgeId, ca: request.cr, items } satisfies CatchUpAnswer));
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

  /** A publisher went silent (host gone): requests stop waiting for it. */
  bridgeGone(bridge: string): void {
    for (const asked of this.asked.values()) if (asked.waiting.delete(bridge) && asked.waiting.size === 0) asked.done();
  }

  close(): void {
    for (const asked of this.asked.values()) asked.done();
  }

  /** Each join gets only what was published after it (per publisher, by what was heard then), once. */
  private select(joins: RouteJoin[], items: Asked["items"]): RemoteCatchUp[] {
    const out: RemoteCatchUp[] = [];
    const seen = new Set<string>();
    for (const item of items) {
      const wanted = joins.some(([nsp, room, at]) => roomKey(nsp, room) === item.key && item.seq > this.heard.at(item.origin, at));
      const id = `${item.origin}\0${item.seq}`;
      if (!wanted || seen.has(id)) continue;
      seen.add(id);
      out.push([item.origin, item.seq, item.message]);
    }
    this.counts.caughtUp += out.length;
    return out;
  }
}

export function roomKey(nsp: string, room: string): string {
  return `${nsp}\0${room}`;
}

/** A broadcast from another host as workers get it: tagged with its publisher and number, to place catch-ups by. */
export function tagged(envelope: { b: string; m: AdapterMessage; s: number }): AdapterMessage {
  return { ...envelope.m, source: ADAPTER_SOURCE, sfo: envelope.b, sfs: envelope.s };
}

export function decodeRoomFrame(raw: Buffer, log: Logger): { b: string; m: AdapterMessage; s: number } | undefined {
  try {
    const envelope = decode(raw) as { b?: unknown; m?: unknown; s?: unknown };
    if (typeof envelope?.b !== "string" || typeof envelope.s !== "number" || typeof envelope.m !== "object" || envelope.m === null) return undefined;
    return envelope as { b: string; m: AdapterMessage; s: number };
  } catch (err) {
    log.warn({ err }, "undecodable room broadcast from another host");
    return undefined;
  }
}
