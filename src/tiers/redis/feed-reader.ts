import type { Logger } from "../../observability/logger";
import { compareStreamIds } from "../recovery/offsets";
import { newestId, type LogSink } from "./log-sink";
import { PositionLog } from "./position-log";
import type { RedisTransport } from "./transport";

const READ_COUNT = 500;
const RETRY_MS = 100;
/** Entries a room catch-up scans per script call (the script runs alone on Redis: kept short). */
const SCAN_COUNT = 2_000;
/** A scan's marker not back within this (subscription not confirmed yet, connection cut): tried again. */
const MARKER_TIMEOUT_MS = 2_000;
/** A scan is given up on after this (the caller decides what that costs). */
const SCAN_TIMEOUT_MS = 8_000;

/**
 * Appends and publishes in one step: the entry goes on the stream and, in the same atomic script,
 * on its channel (the feed, or its room's channel: log-routes.ts), so every channel carries its
 * entries in stream order and one subscriber connection receives all it reads in that order. The
 * published frame is the entry's id and fields, each as `<length>:<bytes>`.
 */
const APPEND_AND_PUBLISH = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 4))
local out = {#id, ':', id}
for i = 4, #ARGV do
  out[#out + 1] = #ARGV[i]
  out[#out + 1] = ':'
  out[#out + 1] = ARGV[i]
end
redis.call(ARGV[3], ARGV[2], table.concat(out))
return id`;

/**
 * A room catch-up: the entries after ARGV[1] (none when empty) routed to one of the channels
 * ARGV[6..] (field "c"), at most ARGV[2] scanned. When the scan reached the stream's end, it
 * publishes (command ARGV[5]) marker ARGV[4] on this host's sync channel ARGV[3]: once the marker arrives, every entry
 * up to the returned id that this host's subscriptions carry has arrived too. Returns
 * {id, more, entries}: `id` is the newest id (more = 1: the last one scanned, to go on from).
 */
const SCAN_AND_SYNC = `
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = newest[1] and newest[1][1] or '0-0'
local found = {}
local more = 0
if ARGV[1] ~= '' then
  local want = {}
  for i = 6, #ARGV do want[ARGV[i]] = true end
  local entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', tonumber(ARGV[2]))
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'c' then
        if want[fields[i + 1]] then found[#found + 1] = entry end
        break
      end
    end
  end
  if #entries == tonumber(ARGV[2]) then
    more = 1
    last = entries[#entries][1]
  end
end
if more == 0 then redis.call(ARGV[5], ARGV[3], ARGV[4]) end
return {last, more, found}`;

/** Feed phases: the subscription is down, or confirmed and catching up by XRANGE, or live. */
type FeedPhase = "down" | "catching-up" | "live";

/** Live entries held while a catch-up runs; beyond this they are dropped and read by the next XRANGE pass. */
const HELD_LIMIT = 10_000;

/** The room channels this host reads besides the feed (log-routes.ts). */
export interface RoomChannels {
  /** Whether entries routed to `channel` are read here now. */
  wants(channel: string): boolean;
  /** Resolves once every room channel read here is subscribed on the current connection (or a bound passed). */
  ready(): Promise<void>;
}

/** A shared-log entry as Redis returns it. */
export type RawEntry = [id: string, fields: Buffer[]];

/**
 * Reads the shared log from pub/sub on one Redis node: each append publishes its entry on the feed
 * channel (or its room's channel) in the same script, so Redis pushes it to the hosts subscribed
 * there (one message, no blocking command re-armed per entry per host, which is what made XREAD's
 * Redis CPU per broadcast high at low rates). Pub/sub loses what is published while a subscriber
 * is away, so each time Redis confirms the feed's subscription the reader reads what it missed by
 * XRANGE from its last id (the feed's entries and its rooms'), holding live entries meanwhile, and
 * goes live once both meet.
 */
export class FeedLogReader {
  private lastId?: string;
  private phase: FeedPhase = "down";
  /** Bumped on every subscription change: a catch-up of an older one stops. */
  private generation = 0;
  private held: RawEntry[] = [];
  private heldOverflow = false;
  private closed = false;
  private rooms?: RoomChannels;
  /** Where the reader stood when: a first join's catch-up starts there. */
  readonly positions = new PositionLog();
  private markerSeq = 0;
  /** Markers of scans in flight -> what to tell the scan when it arrives (or not). */
  private readonly markers = new Map<string, { generation: number; settle: (seen: boolean) => void }>();
  private readonly liveWaiters: Array<() => void> = [];

  constructor(
    private readonly key: string,
    private readonly feed: string,
    private readonly syncChannel: string,
    /** PUBLISH on one node, SPUBLISH on Redis Cluster (the channels share the stream's slot). */
    private readonly publishCommand: "PUBLISH" | "SPUBLISH",
    private readonly redis: RedisTransport,
    private readonly sink: LogSink,
    private readonly log: Logger,
  ) {
    redis.subscribe(feed, this.onFrame, () => this.onSubscribed());
    redis.subscribe(syncChannel, (raw) => this.onMarker(raw.toString()));
  }

  /** Entries routed to room channels are read too, from the channels `rooms` names. */
  setRooms(rooms: RoomChannels): void {
    this.rooms = rooms;
  }

  append(fields: Array<string | Buffer>, maxLength: number, channel = this.feed): Promise<string> {
    return this.redis.command(this.key, ["EVAL", APPEND_AND_PUBLISH, "1", this.key, String(maxLength), channel, this.publishCommand, ...fields]).then(String);
  }

  position(): string | undefined {
    return this.lastId;
  }

  /** The subscribing side went down; it subscribes again on its next connection, which confirms it (onSubscribed). */
  subscriberDown(): void {
    this.setPhase("down");
  }

  async close(): Promise<void> {
    this.closed = true;
    this.generation++;
    for (const { settle } of this.markers.values()) settle(false);
    for (const wake of this.liveWaiters.splice(0)) wake();
    this.redis.unsubscribe(this.feed);
    this.redis.unsubscribe(this.syncChannel);
  }

  /** Listener of the feed and of room channels: one subscriber connection, so one order. */
  readonly onFrame = (raw: Buffer): void => {
    const parsed = parseFeedFrame(raw);
    if (!parsed) return this.log.warn({ bytes: raw.length }, "undecodable frame on the shared log's feed");
    if (this.phase === "catching-up") {
      if (this.held.length >= HELD_LIMIT) this.heldOverflow = true;
      else if (!this.heldOverflow) this.held.push(parsed);
      return;
    }
    if (this.phase !== "live") return;
    this.hand(parsed[0], parsed[1]);
  };

  /**
   * Entries after `from` routed to `channels`, read once every entry up to the stream's end at
   * that moment that this host's subscriptions carry has arrived here (the script's marker came
   * back): an entry of those channels this host has not had live by then never will. The reader's
   * position moves to that end (the host has read all it reads up to there). `from` undefined:
   * only that (a sync: see {@link StreamOrder.readUpTo}). Rejects after SCAN_TIMEOUT_MS.
   */
  async scan(from: string | undefined, channels: string[]): Promise<RawEntry[]> {
    const deadline = Date.now() + SCAN_TIMEOUT_MS;
    while (!this.closed && Date.now() < deadline) {
      if (!(await this.whenLive(deadline - Date.now()))) break;
      const generation = this.generation;
      const found: RawEntry[] = [];
      let cursor = from ?? "";
      try {
        for (;;) {
          const marker = `${++this.markerSeq}`;
          const seen = this.expectMarker(marker, generation);
          const [last, more, entries] = (await this.redis.read(this.key, ["EVAL", SCAN_AND_SYNC, "1", this.key, cursor, String(SCAN_COUNT), this.syncChannel, marker, this.publishCommand, ...channels], true)) as [Buffer, number, Array<[Buffer, Buffer[]]>];
          for (const [id, fields] of entries) found.push([id.toString(), fields]);
          if (more === 1) {
            this.markers.get(marker)?.settle(false);
            cursor = last.toString();
            continue;
          }
          if (!(await seen)) break;
          const end = last.toString();
          if (this.lastId === undefined || compareStreamIds(end, this.lastId) > 0) {
            this.lastId = end;
            this.positions.reached(end);
          }
          return found;
        }
      } catch (err) {
        if (this.closed) break;
        this.log.debug({ err }, "scanning the shared log failed");
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
      }
    }
    throw new Error(`scanning the shared log for ${channels.length} room channel(s) did not finish within ${SCAN_TIMEOUT_MS} ms`);
  }

  /** Resolves true once the marker arrives while the subscription that saw the scan lasts, false otherwise. */
  private expectMarker(marker: string, generation: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(false), MARKER_TIMEOUT_MS);
      timer.unref();
      const settle = (seen: boolean): void => {
        clearTimeout(timer);
        this.markers.delete(marker);
        resolve(seen);
      };
      this.markers.set(marker, { generation, settle });
    });
  }

  private onMarker(marker: string): void {
    const waiting = this.markers.get(marker);
    waiting?.settle(this.phase === "live" && waiting.generation === this.generation);
  }

  private whenLive(timeoutMs: number): Promise<boolean> {
    if (this.phase === "live") return Promise.resolve(true);
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve(this.phase === "live");
      };
      const timer = setTimeout(() => {
        const index = this.liveWaiters.indexOf(wake);
        if (index !== -1) this.liveWaiters.splice(index, 1);
        resolve(false);
      }, Math.max(0, timeoutMs));
      timer.unref();
      this.liveWaiters.push(wake);
    });
  }

  /** The one place the phase changes. */
  private setPhase(phase: FeedPhase): void {
    if (phase === this.phase) return;
    const wasLive = this.phase === "live";
    this.phase = phase;
    if (phase !== "live") {
      this.generation++;
      this.held = [];
      this.heldOverflow = false;
    }
    if (phase === "catching-up") void this.catchUp(this.generation);
    if (phase === "live") {
      this.sink.readable(true);
      for (const wake of this.liveWaiters.splice(0)) wake();
    } else if (wasLive) this.sink.readable(false);
  }

  private onSubscribed(): void {
    if (this.closed) return;
    // A new connection's confirmation follows a "sub" down; were it ever to come without one, the
    // reader starts over all the same.
    this.setPhase("down");
    this.setPhase("catching-up");
  }

  /** An entry in stream order; one routed to a room channel this host does not read is passed over. */
  private hand(id: string, fields: Buffer[]): void {
    if (this.lastId !== undefined && compareStreamIds(id, this.lastId) <= 0) return;
    this.lastId = id;
    this.positions.reached(id);
    const channel = routedChannel(fields);
    if (channel === undefined || this.rooms?.wants(channel)) this.sink.entry(id, fields);
  }

  /** XRANGE from the last id until the held live entries take over; retried while this subscription lasts. */
  private async catchUp(generation: number): Promise<void> {
    while (generation === this.generation && !this.closed) {
      try {
        // Room channels are subscribed again on a new connection too: what they carry from then
        // on comes live, so the XRANGE must run after their confirmations.
        await this.rooms?.ready();
        if (generation !== this.generation) return;
        if (this.lastId === undefined) {
          this.lastId = await newestId(this.redis, this.key);
          if (generation !== this.generation) return;
          this.positions.reached(this.lastId);
          this.sink.follow(this.lastId);
        }
        let more = true;
        while (more) {
          const entries = (await this.redis.read(this.key, ["XRANGE", this.key, `(${this.lastId}`, "+", "COUNT", String(READ_COUNT)], true)) as Array<[Buffer, Buffer[]]>;
          if (generation !== this.generation) return;
          for (const [id, fields] of entries) this.hand(id.toString(), fields);
          more = entries.length === READ_COUNT;
        }
        if (this.heldOverflow) {
          // Live entries were dropped meanwhile: the stream has them; read again, holding anew.
          this.held = [];
          this.heldOverflow = false;
          continue;
        }
        const held = this.held;
        this.held = [];
        for (const [id, fields] of held) this.hand(id, fields);
        this.setPhase("live");
        return;
      } catch (err) {
        if (generation !== this.generation || this.closed) return;
        this.log.debug({ err }, "catching up on the shared log failed");
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
      }
    }
  }
}

/** The room channel an entry was routed to (field "c"), undefined for one on the feed. */
export function routedChannel(fields: Buffer[]): string | undefined {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i].length === 1 && fields[i][0] === 0x63) return fields[i + 1].toString();
  }
  return undefined;
}

/** `<length>:<bytes>` pieces: the entry's id, then its fields and values. Undefined when malformed. */
export function parseFeedFrame(raw: Buffer): [string, Buffer[]] | undefined {
  const pieces: Buffer[] = [];
  let at = 0;
  while (at < raw.length) {
    const colon = raw.indexOf(0x3a, at);
    if (colon === -1 || colon === at || colon - at > 10) return undefined;
    const length = Number(raw.toString("latin1", at, colon));
    if (!Number.isSafeInteger(length) || length < 0 || colon + 1 + length > raw.length) return undefined;
    pieces.push(raw.subarray(colon + 1, colon + 1 + length));
    at = colon + 1 + length;
  }
  if (pieces.length < 3 || pieces.length % 2 !== 1) return undefined;
  return [pieces[0].toString("latin1"), pieces.slice(1)];
}
