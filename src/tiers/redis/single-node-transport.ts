import { commandOptions } from "redis";
import type { Config } from "../../config/schema";
import type { Logger } from "../../observability/logger";
import { createConnection, type RedisClient } from "./client";
import { checkCutOff } from "./cut-off";
import type { KeyCommands, RedisTransport, TransportOptions } from "./transport";

type Listener = (raw: Buffer, channel: string) => void;

/**
 * The bridge's transport on one Redis node: a publishing connection (publish and key commands), a
 * subscribing one (plain SUBSCRIBE/PSUBSCRIBE), one node.
 */
export class SingleNodeTransport implements RedisTransport {
  readonly subscriberName: string;
  private readonly pub: RedisClient;
  private sub: RedisClient;
  private readonly log: Logger;
  private readonly channels = new Map<string, Listener>();
  /** channel -> called when Redis confirmed its subscription (see RedisTransport.subscribe). */
  private readonly confirmations = new Map<string, () => void>();
  private readonly patterns = new Map<string, Listener>();
  private pubUp = false;
  /** Times the publishing connection went down. */
  private pubDowns = 0;
  private subReady = false;
  private closed = false;
  private clusterChecked = false;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly options: TransportOptions,
  ) {
    this.log = logger.child({ component: "redis-transport" });
    this.subscriberName = `sockfleet:${config.hostId}:sub`;
    this.pub = createConnection(config, logger, {
      name: `sockfleet:${config.hostId}:pub`,
      offlineQueue: false,
      onStatus: (up) => {
        this.pubUp = up;
        if (!up) this.pubDowns++;
        if (up) this.checkNotCluster();
        options.onStatus("pub", up);
      },
    });
    this.sub = this.connectSubscriber();
  }

  get keys(): KeyCommands {
    return this.pub;
  }

  publish(channel: string, payload: Buffer): Promise<unknown> {
    return this.pub.publish(channel, payload);
  }

  subscribe(channel: string, listener: (raw: Buffer) => void, onSubscribed?: () => void): void {
    this.channels.set(channel, listener);
    if (onSubscribed) this.confirmations.set(channel, onSubscribed);
    else this.confirmations.delete(channel);
    if (this.subReady) this.subscribeOne(this.sub, channel, listener);
  }

  unsubscribe(channel: string): void {
    this.confirmations.delete(channel);
    if (!this.channels.delete(channel) || !this.subReady) return;
    this.sub.unsubscribe(channel).catch((err: unknown) => this.log.debug({ err, channel }, "redis unsubscribe failed"));
  }

  pSubscribe(pattern: string, listener: (raw: Buffer, channel: string) => void): void {
    this.patterns.set(pattern, listener);
    if (this.subReady) this.pSubscribeOne(this.sub, pattern, listener);
  }

  command(_key: string | undefined, args: Array<string | Buffer>): Promise<unknown> {
    return this.pub.sendCommand(args);
  }

  read(_key: string, args: string[], buffers: boolean): Promise<unknown> {
    return this.pub.sendCommand(args, commandOptions({ returnBuffers: buffers }));
  }

  ping(): Promise<unknown> {
    return this.pub.ping();
  }

  async close(): Promise<void> {
    this.closed = true;
    const connections = [this.pub, this.sub];
    await Promise.all(connections.map((c) => (c.isOpen ? c.disconnect().catch(() => undefined) : undefined)));
  }

  /**
   * The subscribing connection. Once it has been up and drops, it is replaced by a new one rather
   * than left to reconnect: node-redis 4 keeps a half-parsed reply across a reconnect (its RESP2
   * decoder's reset leaves a nested array behind), so a connection cut in the middle of a message
   * (as client-output-buffer-limit cuts it) never became ready again (found here).
   */
  private connectSubscriber(): RedisClient {
    let subscribed = false;
    const client = createConnection(this.config, this.logger, {
      name: this.subscriberName,
      offlineQueue: false,
      onStatus: (up) => {
        if (client !== this.sub) return;
        // Subscribe on the first connect, not before it: subscribing through the offline queue
        // crashes node-redis 4.7 in its reply queue when Redis was unreachable at start.
        if (up && !subscribed) {
          subscribed = true;
          this.subReady = true;
          for (const [channel, listener] of this.channels) this.subscribeOne(client, channel, listener);
          for (const [pattern, listener] of this.patterns) this.pSubscribeOne(client, pattern, listener);
        }
        if (!up && !this.closed) {
          this.subReady = false;
          const publisher = { client: this, up: () => this.pubUp, downs: () => this.pubDowns };
          checkCutOff(publisher, this.log, { connection: "sub", lastOutputBufferBytes: this.options.subscriberOutputBuffer() });
          this.sub = this.connectSubscriber();
          client.disconnect().catch(() => undefined);
        }
        this.options.onStatus("sub", up);
      },
    });
    return client;
  }

  /**
   * On a Redis Cluster node, plain pub/sub reaches every node but keys of other nodes' slots answer
   * MOVED: the shared log and the session hashes would fail. Said once, naming the setting.
   */
  private checkNotCluster(): void {
    if (this.clusterChecked) return;
    this.clusterChecked = true;
    this.pub
      .sendCommand(["INFO", "cluster"])
      .then((info) => {
        if (/cluster_enabled:1/.test(String(info))) this.log.error("--redis names a node of a Redis Cluster: set --redis-sharded true (REDIS_SHARDED), or key commands fail with MOVED");
      })
      .catch((err: unknown) => this.log.debug({ err }, "INFO cluster failed"));
  }

  private subscribeOne(client: RedisClient, channel: string, listener: Listener): void {
    client.subscribe(channel, (raw) => listener(raw, channel), true).then(
      () => this.confirmations.get(channel)?.(),
      (err: unknown) => this.log.error({ err, channel }, "redis subscribe failed"),
    );
  }

  private pSubscribeOne(client: RedisClient, pattern: string, listener: Listener): void {
    client.pSubscribe(pattern, (raw, channel) => listener(raw, channel.toString()), true).catch((err: unknown) => this.log.error({ err, pattern }, "redis subscribe failed"));
  }
}
