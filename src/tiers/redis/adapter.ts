import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { createCluster } from "redis";
import type { ServerOptions } from "socket.io";
import type { Config } from "../../config/schema";
import type { Logger } from "../../observability/logger";
import { createConnection, redactUrl, type RedisTierStatus } from "./client";
import { checkCutOff } from "./cut-off";
import { completeDecoderReset } from "./decoder-reset";

export interface WorkerRedisAdapter {
  adapter: NonNullable<ServerOptions["adapter"]>;
  /** This worker's own view of Redis, for its /readyz. */
  status(): RedisTierStatus;
}

/**
 * Adapter mode: this worker joins the cluster through @socket.io/redis-adapter itself, with its
 * own publishing and subscribing connections (so Redis holds 2 connections per worker and fans
 * every broadcast out to every worker of every host). The channel prefix is the adapter's `key`,
 * shared with @socket.io/redis-emitter. Interoperates with stock Socket.IO servers on the same prefix.
 */
export async function classicAdapter(config: Config, logger: Logger, onCutOff: () => void = () => undefined): Promise<WorkerRedisAdapter> {
  // Without it a subscriber Redis cut off mid-message hands the adapter garbage and the worker dies.
  if (!completeDecoderReset()) logger.warn("node-redis decoder not recognised: a subscriber cut off by Redis may not recover");
  let up = { pub: false, sub: false };
  let pubDowns = 0;
  let firstConnect: (() => void) | undefined;
  const track = (which: "pub" | "sub") => (state: boolean) => {
    if (which === "pub" && up.pub && !state) pubDowns++;
    // Redis may have cut the subscriber for its output buffer: what was published meanwhile is lost.
    if (which === "sub" && up.sub && !state) checkCutOff({ client: pub, up: () => up.pub, downs: () => pubDowns }, logger.child({ component: "redis" }), { connection: "worker:sub" }, onCutOff);
    up = { ...up, [which]: state };
    if (state) firstConnect?.();
  };
  // The adapter subscribes before the first connect, so the offline queue must stay on.
  const pub = createConnection(config, logger, { name: `sockfleet:${config.hostId}:worker:pub`, offlineQueue: true, onStatus: track("pub") });
  // node-redis 4.7 crashes when subscriptions queued offline meet the CLIENT SETNAME of a late
  // first connect. So the subscriber is named (visible in CLIENT LIST) only when Redis answers
  // within the connect timeout; otherwise the worker starts at once with an unnamed one.
  const reachable = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), config.redisConnectTimeout);
    firstConnect = () => {
      clearTimeout(timer);
      resolve(true);
    };
  });
  firstConnect = undefined;
  const sub = createConnection(config, logger, {
    name: reachable ? `sockfleet:${config.hostId}:worker:sub` : undefined,
    offlineQueue: true,
    onStatus: track("sub"),
  });
  return {
    adapter: createAdapter(pub, sub, { key: config.redisPrefix }),
    status: () => (up.pub && up.sub ? "connected" : "degraded"),
  };
}

/**
 * Adapter mode on Redis Cluster (Redis >= 7): the sharded adapter, SPUBLISH/SSUBSCRIBE, in its
 * "static" mode (two channels per namespace). Its "dynamic" mode (a channel per room, so room
 * traffic reaches only workers with members) subscribes to a room's channel after the join has
 * returned, so a message sent to the room right after its first join on a worker is lost for that
 * worker: the adapter API suite caught it. Unlike the other modes it waits for the cluster at start-up: the cluster client cannot queue
 * commands before it knows the slot map.
 */
export async function shardedAdapter(config: Config, logger: Logger): Promise<WorkerRedisAdapter> {
  const log = logger.child({ component: "redis", connection: "cluster" });
  const url = config.redisUrl!;
  const make = () =>
    createCluster({
      rootNodes: [{ url }],
      defaults: { socket: { connectTimeout: config.redisConnectTimeout, reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, 500) } },
    });
  const pub = make();
  const sub = make();
  let up = false;
  for (const client of [pub, sub]) {
    client.on("error", (err: Error) => {
      up = false;
      log.debug({ err }, "redis cluster error");
    });
  }
  try {
    await Promise.all([pub.connect(), sub.connect()]);
  } catch (err) {
    throw new Error(`cannot reach Redis Cluster at ${redactUrl(url)}: ${(err as Error).message}`);
  }
  up = true;
  log.info({ url: redactUrl(url) }, "redis cluster connected");
  return {
    adapter: createShardedAdapter(pub, sub, { channelPrefix: config.redisPrefix, subscriptionMode: "static" }),
    status: () => (up ? "connected" : "degraded"),
  };
}
