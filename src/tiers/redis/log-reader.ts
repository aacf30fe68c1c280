import type { Logger } from "../../observability/logger";
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
  /**
   * Appends an entry (field/value pairs) trimmed to about `maxLength` entries; resolves with its id.
   * `channel`: the room channel the entry is routed to (one Redis node only: feed-reader.ts).
   */
  append(fields: Array<string | Buffer>, maxLength: number, channel?: string): Promise<string>;
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

/** The newest id of the stream ("0-0" when it is empty or missing). */
export async function newestId(redis: RedisTransport, key: string): Promise<string> {
  const last = (await redis.read(key, ["XREVRANGE", key, "+", "-", "COUNT", "1"], false)) as Array<[string, string[]]>;
  return last[0]?.[0] ?? "0-0";
}

