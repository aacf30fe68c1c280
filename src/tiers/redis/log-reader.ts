import type { Logger } from "../../observability/logger";
import { compareStreamIds } from "../recovery/offsets";
import type { RedisTransport } from "./transport";

const READ_BLOCK_MS = 1_000;
const READ_COUNT = 500;
const RETRY_MS = 100;

/** What a reader hands the shared log's entries to (stream-order.ts). */
export interface LogSink {
  /** The reader follows the log from this id on (its first start: what came before belongs to no client here). */
  follow(id: string): void;
  /** The next entry, in stream order: each exactly once, none skipped while the reader was readable. */
  entry(id: string, fields: Buffer[]): void;
  /** Entries were handed over: who waits for a position may look again. */
  advanced(): void;
  /** Whether an append made now will be read back (false: it may never be, so nothing should wait on it). */
  readable(up: boolean): void;
}

/** Appends entries to the shared log and reads them back, every host's in one order. */
export interface LogReader {
  /** Appends an entry (field/value pairs) trimmed to about `maxLength` entries; resolves with its id. */
  append(fields: Array<string | Buffer>, maxLength: number): Promise<string>;
  /** Id of the newest entry handed to the sink (undefined before the reader started). */
  position(): string | undefined;
  /** A transport side changed state ("reader": its own connection; "sub": the subscriber). */
  side(side: "reader" | "sub", up: boolean): void;
  close(): Promise<void>;
}

/**
 * Reads the shared log with a blocking XREAD loop on a connection of its own: every host wakes for
 * every entry. Used on Redis Cluster, where the feed's PUBLISH would have to live in the log's slot.
 */
export class XReadLogReader implements LogReader {
  private lastId?: string;
  private up = false;
  private closed = false;
  private wake?: () => void;
  private readonly loop: Promise<void>;

  constructor(
    private readonly key: string,
    private readonly redis: RedisTransport,
    private readonly sink: LogSink,
    private readonly log: Logger,
  ) {
    this.loop = this.read();
  }

  append(fields: Array<string | Buffer>, maxLength: number): Promise<string> {
    return this.redis.command(this.key, ["XADD", this.key, "MAXLEN", "~", String(maxLength), "*", ...fields]).then(String);
  }

  position(): string | undefined {
    return this.lastId;
  }

  side(side: "reader" | "sub", up: boolean): void {
    if (side !== "reader") return;
    this.up = up;
    if (up) this.wake?.();
    this.sink.readable(up);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.loop;
  }

  private async read(): Promise<void> {
    while (!this.closed) {
      if (!this.up) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, READ_BLOCK_MS).unref();
        });
        continue;
      }
      try {
        if (this.lastId === undefined) {
          this.lastId = await newestId(this.redis, this.key);
          this.sink.follow(this.lastId);
        }
        const reply = (await this.redis.read(this.key, ["XREAD", "COUNT", String(READ_COUNT), "BLOCK", String(READ_BLOCK_MS), "STREAMS", this.key, this.lastId], true)) as Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            this.lastId = id.toString();
            this.sink.entry(this.lastId, fields);
          }
        }
        this.sink.advanced();
      } catch (err) {
        if (this.closed) return;
        this.log.debug({ err }, "reading the shared log failed");
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
      }
    }
  }
}

/**
 * Appends and publishes in one step: the entry goes on the stream and, in the same atomic script,
 * on the feed channel, so the feed carries every entry in stream order. The published frame is the
 * entry's id and fields, each as `<length>:<bytes>`.
 */
const APPEND_AND_PUBLISH = `
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(ARGV, 3))
local out = {#id, ':', id}
for i = 3, #ARGV do
  out[#out + 1] = #ARGV[i]
  out[#out + 1] = ':'
  out[#out + 1] = ARGV[i]
end
redis.call('PUBLISH', ARGV[2], table.concat(out))
return id`;

/** Feed phases: the subscription is down, or confirmed and catching up by XRANGE, or live. */
type FeedPhase = "down" | "catching-up" | "live";

/** Live entries held while a catch-up runs; beyond this they are dropped and read by the next XRANGE pass. */
const HELD_LIMIT = 10_000;

/**
 * Reads the shared log from a pub/sub feed on one Redis node: each append publishes its entry on
 * the feed channel in the same script, so Redis pushes it to every host's subscriber (one message,
 * no blocking command re-armed per entry per host, which is what made XREAD's Redis CPU per
 * broadcast high at low rates). Pub/sub loses what is published while a subscriber is away, so
 * each time Redis confirms the feed's subscription the reader reads what it missed by XRANGE from
 * its last id, holding live entries meanwhile, and goes live once both meet.
 */
export class FeedLogReader implements LogReader {
  private lastId?: string;
  private phase: FeedPhase = "down";
  /** Bumped on every subscription change: a catch-up of an older one stops. */
  private generation = 0;
  private held: Array<[string, Buffer[]]> = [];
  private heldOverflow = false;
  private closed = false;

  constructor(
    private readonly key: string,
    private readonly feed: string,
    private readonly redis: RedisTransport,
    private readonly sink: LogSink,
    private readonly log: Logger,
  ) {
    redis.subscribe(feed, (raw) => this.onFeed(raw), () => this.onSubscribed());
  }

  append(fields: Array<string | Buffer>, maxLength: number): Promise<string> {
    return this.redis.command(this.key, ["EVAL", APPEND_AND_PUBLISH, "1", this.key, String(maxLength), this.feed, ...fields]).then(String);
  }

  position(): string | undefined {
    return this.lastId;
  }

  side(side: "reader" | "sub", up: boolean): void {
    // The subscription is made again on the next connection, which confirms it (onSubscribed).
    if (side !== "sub" || up) return;
    this.setPhase("down");
  }

  async close(): Promise<void> {
    this.closed = true;
    this.generation++;
    this.redis.unsubscribe(this.feed);
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
    if (phase === "live") this.sink.readable(true);
    else if (wasLive) this.sink.readable(false);
  }

  private onSubscribed(): void {
    if (this.closed) return;
    // A new connection's confirmation follows a "sub" down; were it ever to come without one, the
    // reader starts over all the same.
    this.setPhase("down");
    this.setPhase("catching-up");
  }

  private onFeed(raw: Buffer): void {
    const parsed = parseFeedFrame(raw);
    if (!parsed) return this.log.warn({ bytes: raw.length }, "undecodable frame on the shared log's feed");
    if (this.phase === "catching-up") {
      if (this.held.length >= HELD_LIMIT) this.heldOverflow = true;
      else if (!this.heldOverflow) this.held.push(parsed);
      return;
    }
    if (this.phase !== "live") return;
    this.hand(parsed[0], parsed[1]);
    this.sink.advanced();
  }

  private hand(id: string, fields: Buffer[]): void {
    if (this.lastId !== undefined && compareStreamIds(id, this.lastId) <= 0) return;
    this.lastId = id;
    this.sink.entry(id, fields);
  }

  /** XRANGE from the last id until the held live entries take over; retried while this subscription lasts. */
  private async catchUp(generation: number): Promise<void> {
    while (generation === this.generation && !this.closed) {
      try {
        if (this.lastId === undefined) {
          this.lastId = await newestId(this.redis, this.key);
          if (generation !== this.generation) return;
          this.sink.follow(this.lastId);
        }
        let more = true;
        while (more) {
          const entries = (await this.redis.read(this.key, ["XRANGE", this.key, `(${this.lastId}`, "+", "COUNT", String(READ_COUNT)], true)) as Array<[Buffer, Buffer[]]>;
          if (generation !== this.generation) return;
          for (const [id, fields] of entries) this.hand(id.toString(), fields);
          this.sink.advanced();
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
        this.sink.advanced();
        return;
      } catch (err) {
        if (generation !== this.generation || this.closed) return;
        this.log.debug({ err }, "catching up on the shared log failed");
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
      }
    }
  }
}

/** The newest id of the stream ("0-0" when it is empty or missing). */
async function newestId(redis: RedisTransport, key: string): Promise<string> {
  const last = (await redis.read(key, ["XREVRANGE", key, "+", "-", "COUNT", "1"], false)) as Array<[string, string[]]>;
  return last[0]?.[0] ?? "0-0";
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
