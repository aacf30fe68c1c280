import { createClient, type RedisClientType } from "redis";
import type { Config } from "../../config/schema";
import type { Logger } from "../../observability/logger";

export type RedisClient = RedisClientType;

/** State of the hosts tier as probes report it: "connected", or "degraded" while Redis is unreachable. */
export type RedisTierStatus = "connected" | "degraded";

/** Longest pause between reconnection attempts: Redis coming back is noticed within this. */
const RECONNECT_MAX_DELAY_MS = 500;

/** Strips the password from a Redis URL so it can be logged. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable url)";
  }
}

export interface ConnectionOptions {
  /** Name in CLIENT LIST (CLIENT SETNAME), e.g. "sockfleet:host-a:pub"; undefined leaves it unnamed. */
  name: string | undefined;
  /**
   * Queue commands while disconnected (node-redis' offline queue, unbounded). The bridge turns it
   * off and keeps its own bounded queue; adapter mode keeps it because the redis-adapter subscribes
   * before the connection is up.
   */
  offlineQueue: boolean;
  /** Called whenever the connection becomes usable or stops being usable. */
  onStatus?: (up: boolean) => void;
}

/**
 * One Redis connection that never gives up: it reconnects forever with a short capped backoff
 * (node-redis restores subscriptions on reconnect), logs transitions once rather than per attempt,
 * and never lets a connection error crash the process.
 */
export function createConnection(config: Config, logger: Logger, options: ConnectionOptions): RedisClient {
  if (config.redisUrl === undefined) throw new Error("createConnection called without a Redis URL");
  const log = logger.child({ component: "redis", connection: options.name ?? "(unnamed)" });
  const client: RedisClient = createClient({
    url: config.redisUrl,
    ...(options.name === undefined ? {} : { name: options.name }),
    disableOfflineQueue: !options.offlineQueue,
    socket: {
      connectTimeout: config.redisConnectTimeout,
      reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, RECONNECT_MAX_DELAY_MS),
    },
  });
  let up = false;
  let lastError = "";
  const set = (next: boolean): void => {
    if (next === up) return;
    up = next;
    if (up) log.info({ url: redactUrl(config.redisUrl!) }, "redis connected");
    else log.warn({ url: redactUrl(config.redisUrl!), reason: lastError }, "redis unreachable, reconnecting");
    options.onStatus?.(up);
  };
  client.on("ready", () => set(true));
  client.on("end", () => set(false));
  client.on("reconnecting", () => set(false));
  client.on("error", (err: Error) => {
    // node-redis emits one error per failed attempt; log only the first of a run.
    if (up || err.message !== lastError) log.debug({ err }, "redis connection error");
    lastError = err.message;
    set(false);
  });
  // connect() retries by itself through reconnectStrategy; a rejection only means we closed it.
  client.connect().catch((err: unknown) => log.debug({ err }, "redis connect stopped"));
  return client;
}
