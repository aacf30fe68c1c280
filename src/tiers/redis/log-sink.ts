import type { RedisTransport } from "./transport";

/** What the shared log's reader (feed-reader.ts) hands entries to (stream-order.ts). */
export interface LogSink {
  /** The reader follows the log from this id on (its first start: what came before belongs to no client here). */
  follow(id: string): void;
  /** The next entry, in stream order: each exactly once, none skipped while the reader was readable. */
  entry(id: string, fields: Buffer[]): void;
  /** Whether an append made now will be read back (false: it may never be, so nothing should wait on it). */
  readable(up: boolean): void;
}

/** The newest id of the stream ("0-0" when it is empty or missing). */
export async function newestId(redis: RedisTransport, key: string): Promise<string> {
  const last = (await redis.read(key, ["XREVRANGE", key, "+", "-", "COUNT", "1"], false)) as Array<[string, string[]]>;
  return last[0]?.[0] ?? "0-0";
}
