import type { Config } from "../../config/schema";
import type { Logger } from "../../observability/logger";
import type { RedisClient } from "./client";
import { ClusterTransport } from "./cluster-transport";
import { SingleNodeTransport } from "./single-node-transport";

/**
 * The key commands the bridge uses (shared log appends, session hashes, the hosts zset). On a
 * Redis Cluster node-redis' cluster client offers the same commands with the same arguments and
 * routes each to the node holding its key; no command the bridge sends touches two keys, so no
 * key needs a hash tag.
 */
export type KeyCommands = Pick<RedisClient, "xAdd" | "zAdd" | "pExpire" | "zRemRangeByScore" | "zRangeByScore" | "hGet" | "hDel" | "multi">;

/** Which side of the transport changed state. */
export type TransportSide = "pub" | "sub";

export interface TransportOptions {
  /** Called whenever one side becomes usable or stops being usable. */
  onStatus(side: TransportSide, up: boolean): void;
  /** The subscriber's output buffer at the last sample, for the cut-off log line. */
  subscriberOutputBuffer(): number;
}

/**
 * How the bridge reaches Redis: one node (plain pub/sub) or a Redis Cluster (sharded pub/sub,
 * keys spread over slots). The bridge does not care which. Every method may reject while Redis
 * (or the node holding the key or channel) is unreachable: there is no offline queue behind it.
 */
export interface RedisTransport {
  /** Key commands, on the publishing side. */
  readonly keys: KeyCommands;
  publish(channel: string, payload: Buffer): Promise<unknown>;
  /**
   * Listens on `channel` from now on, across reconnections and replaced connections (the
   * subscription is made when the subscribing side is up). `onSubscribed` is called each time
   * Redis confirmed it on a connection: what is published after that reaches the listener.
   */
  subscribe(channel: string, listener: (raw: Buffer) => void, onSubscribed?: () => void): void;
  unsubscribe(channel: string): void;
  /**
   * Pattern subscription, for @socket.io/redis-emitter's channels. On a cluster it is a plain
   * PSUBSCRIBE on one node: a plain PUBLISH reaches every node of a cluster.
   */
  pSubscribe(pattern: string, listener: (raw: Buffer, channel: string) => void): void;
  /** One command on the publishing side, sent to the node holding `key` (any node without one). */
  command(key: string | undefined, args: Array<string | Buffer>): Promise<unknown>;
  /** One non-blocking command on the publishing side, sent to the node holding `key`, its reply as Buffers when `buffers` (the shared log's catch-ups and scans). */
  read(key: string, args: string[], buffers: boolean): Promise<unknown>;
  /** Answers when the publishing side is reachable (cut-off detection). */
  ping(): Promise<unknown>;
  /** Names of the subscribing connections in CLIENT LIST (CLIENT SETNAME). */
  readonly subscriberName: string;
  close(): Promise<void>;
}

/** The transport for `--redis`: a cluster with `--redis-sharded true`, else one node. */
export function createTransport(config: Config, logger: Logger, options: TransportOptions): RedisTransport {
  return config.redisSharded ? new ClusterTransport(config, logger, options) : new SingleNodeTransport(config, logger, options);
}
