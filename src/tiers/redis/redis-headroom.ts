import type { Logger } from "../../observability/logger";
import type { RedisTransport } from "./transport";

/** How often Redis is asked; each sample is two cheap commands on the publishing connection. */
export const SAMPLE_MS = 2_000;

/** Where this host reads the shared log (connection-state recovery on). */
export interface LogReader {
  key: string;
  /** Id of the newest entry read, undefined before the reader started. */
  position(): string | undefined;
  /** Entries read so far (each XADD, own ones included). */
  read(): number;
}

export interface RedisHeadroomValues {
  /** Output buffer (omem) and total memory (tot-mem) Redis holds for this host's subscriber. */
  subscriber: { outputBytes: number; totalBytes: number } | undefined;
  /** Shared log entries and seconds between what this host read and the stream's head. */
  logLag: { entries: number; seconds: number } | undefined;
}

/** Milliseconds part of a stream id "ms-seq". */
const idMs = (id: string): number => Number(id.slice(0, id.indexOf("-")));

/**
 * Samples how close this host is to being cut off by Redis: the output buffer Redis holds for its
 * subscriber connection (CLIENT LIST TYPE pubsub lists only subscribers, a handful per fleet, never
 * every client) and how far its reader is behind the shared log's head (XINFO STREAM: O(1)).
 *
 * Lag in entries: the stream's `entries-added` counts every XADD ever made, and this host reads
 * every entry, so entries behind = entries-added - (read + base), where base is learnt whenever the
 * reader is caught up (its position is the stream's last id).
 */
export class RedisHeadroom {
  private values: RedisHeadroomValues = { subscriber: undefined, logLag: undefined };
  private base?: number;
  private readonly timer: NodeJS.Timeout;
  private sampling = false;

  constructor(
    private readonly redis: Pick<RedisTransport, "command" | "subscriberName">,
    private readonly pubUp: () => boolean,
    /** A channel this host subscribes to: on a cluster, CLIENT LIST asks the node holding it. */
    private readonly subscribedChannel: string,
    private readonly reader: LogReader | undefined,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  current(): RedisHeadroomValues {
    return this.values;
  }

  /** The subscriber's output buffer at the last sample (0 when unknown). */
  subscriberOutputBuffer(): number {
    return this.values.subscriber?.outputBytes ?? 0;
  }

  close(): void {
    clearInterval(this.timer);
  }

  async sample(): Promise<void> {
    if (this.sampling || !this.pubUp()) return;
    this.sampling = true;
    try {
      this.values = { subscriber: await this.subscriber(), logLag: this.reader ? await this.logLag(this.reader) : undefined };
    } catch (err) {
      // Managed Redis may refuse CLIENT LIST; the series then stay absent. Debug: it repeats.
      this.log.debug({ err }, "sampling redis headroom failed");
    } finally {
      this.sampling = false;
    }
  }

  private async subscriber(): Promise<RedisHeadroomValues["subscriber"]> {
    const list = String(await this.redis.command(this.subscribedChannel, ["CLIENT", "LIST", "TYPE", "pubsub"]));
    for (const line of list.split("\n")) {
      const fields = new Map(line.trim().split(" ").map((pair) => [pair.slice(0, pair.indexOf("=")), pair.slice(pair.indexOf("=") + 1)]));
      if (fields.get("name") !== this.redis.subscriberName) continue;
      return { outputBytes: Number(fields.get("omem") ?? 0), totalBytes: Number(fields.get("tot-mem") ?? 0) };
    }
    return undefined;
  }

  private async logLag(reader: LogReader): Promise<RedisHeadroomValues["logLag"]> {
    const position = reader.position();
    if (position === undefined) return undefined;
    const reply = (await this.redis.command(reader.key, ["XINFO", "STREAM", reader.key]).catch(() => undefined)) as unknown[] | undefined;
    if (!Array.isArray(reply)) return { entries: 0, seconds: 0 }; // no stream yet: nothing to lag behind
    const info = new Map<string, unknown>();
    for (let i = 0; i + 1 < reply.length; i += 2) info.set(String(reply[i]), reply[i + 1]);
    const head = String(info.get("last-generated-id") ?? "0-0");
    const added = Number(info.get("entries-added"));
    const read = reader.read();
    if (head === position) {
      this.base = added - read;
      return { entries: 0, seconds: 0 };
    }
    const entries = Number.isFinite(added) && this.base !== undefined ? Math.max(0, added - read - this.base) : 0;
    return { entries, seconds: Math.max(0, (idMs(head) - idMs(position)) / 1000) };
  }
}
