import { commandOptions } from "redis";
import type { Config } from "../../config/schema";
import type { Logger } from "../../observability/logger";
import { redactUrl } from "./client";
import { ClusterClients, RECONNECT_MAX_DELAY_MS, type Cluster } from "./cluster-clients";
import { checkCutOff } from "./cut-off";
import { everyMasterOk, mastersOf, ready } from "./slot-map";
import type { KeyCommands, RedisTransport, TransportOptions, TransportSide } from "./transport";

type Listener = (raw: Buffer, channel: string) => void;
/** node-redis' listener shape; kept per channel so subscribing twice adds it once (it keeps a Set). */
type RawListener = (raw: Buffer, channel: Buffer) => void;

/** How often the state of every node connection is looked at. */
const POLL_MS = 100;
/** A side down this long makes the transport ask the cluster whether its masters changed (failover). */
const MAP_CHECK_MS = 1_000;
/** Longest wait for the connections to close at shutdown. */
const CLOSE_TIMEOUT_MS = 1_000;

/**
 * The bridge's transport on a Redis Cluster (Redis >= 7), through node-redis' cluster client:
 * SPUBLISH/SSUBSCRIBE (a sharded channel lives on the node that holds its slot, so channels spread
 * over nodes), and key commands routed to the node holding the key.
 *
 * A side is up when every master's connection is ready (and, for the publishing side, every master
 * says cluster_state:ok): one node down makes the tier degraded, as one Redis down does. node-redis
 * reconnects each node's connection by itself; the subscribing side is instead replaced whole once
 * one of its connections drops (as on one node: a connection cut mid-message does not recover in
 * node-redis 4, and a new cluster client also learns the current slot map).
 */
export class ClusterTransport implements RedisTransport {
  readonly subscriberName: string;
  private pub!: Cluster;
  private sub?: Cluster;
  private readonly log: Logger;
  private readonly channels = new Map<string, RawListener>();
  /** channel -> called when its SSUBSCRIBE was confirmed (see RedisTransport.subscribe). */
  private readonly confirmations = new Map<string, () => void>();
  private readonly patterns = new Map<string, RawListener>();
  private readonly clients: ClusterClients;
  private readonly up: Record<TransportSide, boolean> = { pub: false, sub: false };
  private pubOpen = false;
  /** Every subscription is in place on the current subscriber. */
  private subscribed = false;
  private pubDowns = 0;
  private probing = false;
  /** When a side last went down (undefined while all are up), and when the map was last checked. */
  private downSince?: number;
  private mapCheckedAt = 0;
  private checkingMap = false;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(
    config: Config,
    logger: Logger,
    private readonly options: TransportOptions,
  ) {
    this.log = logger.child({ component: "redis-transport", url: redactUrl(config.redisUrl!) });
    this.subscriberName = `sockfleet:${config.hostId}:sub`;
    this.clients = new ClusterClients(config, this.log, () => this.closed);
    this.openPublisher();
    void this.openSubscriber();
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
  }

  get keys(): KeyCommands {
    // The cluster client has these commands, with the same arguments, each routed by its key.
    return this.pub as unknown as KeyCommands;
  }

  publish(channel: string, payload: Buffer): Promise<unknown> {
    return this.pub.sPublish(channel, payload);
  }

  subscribe(channel: string, listener: (raw: Buffer) => void, onSubscribed?: () => void): void {
    const raw: RawListener = (message) => listener(message);
    this.channels.set(channel, raw);
    if (onSubscribed) this.confirmations.set(channel, onSubscribed);
    else this.confirmations.delete(channel);
    if (this.sub && this.subscribed) this.sub.sSubscribe(channel, raw, true).then(() => this.confirmations.get(channel)?.(), (err: unknown) => this.resubscribe(err, channel));
  }

  unsubscribe(channel: string): void {
    const raw = this.channels.get(channel);
    this.confirmations.delete(channel);
    if (!raw || !this.channels.delete(channel) || !this.sub || !this.subscribed) return;
    this.sub.sUnsubscribe(channel, raw, true).catch((err: unknown) => this.log.debug({ err, channel }, "redis unsubscribe failed"));
  }

  pSubscribe(pattern: string, listener: Listener): void {
    const raw: RawListener = (message, channel) => listener(message, channel.toString());
    this.patterns.set(pattern, raw);
    if (this.sub && this.subscribed) this.sub.pSubscribe(pattern, raw, true).catch((err: unknown) => this.resubscribe(err, pattern));
  }

  command(key: string | undefined, args: Array<string | Buffer>): Promise<unknown> {
    return this.pub.sendCommand(key, false, args);
  }

  read(key: string, args: string[], buffers: boolean): Promise<unknown> {
    return this.pub.sendCommand(key, false, args, commandOptions({ returnBuffers: buffers }));
  }

  ping(): Promise<unknown> {
    return this.pub.sendCommand(undefined, true, ["PING"]);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    const clusters = [this.pub, this.sub].filter((c): c is Cluster => c !== undefined);
    // node-redis 4.7 disconnects a node's connection only once it has connected: one still trying
    // a dead node would hold the shutdown forever.
    await Promise.race([
      Promise.all(clusters.map((c) => c.disconnect().catch(() => undefined))),
      new Promise((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS).unref()),
    ]);
  }

  private openPublisher(): void {
    const old = this.pub as Cluster | undefined;
    const pub = (this.pub = this.clients.make("pub", false));
    this.pubOpen = false;
    old?.disconnect().catch(() => undefined);
    void this.clients.open(pub, "pub", () => this.pub === pub).then((ok) => (this.pubOpen = ok && this.pub === pub));
  }

  private async openSubscriber(): Promise<void> {
    const sub = this.clients.make("sub", true);
    this.sub = sub;
    this.subscribed = false;
    if (!(await this.clients.open(sub, "sub", () => this.sub === sub))) return;
    // Channels subscribed meanwhile are only recorded (subscribe() waits for `subscribed`): each
    // round takes those not done yet, until a round finds none, so no channel is confirmed unsubscribed.
    const done = new Set<string>();
    while (!this.closed && this.sub === sub) {
      try {
        for (;;) {
          const channels = [...this.channels].filter(([channel]) => !done.has(channel));
          const patterns = [...this.patterns].filter(([pattern]) => !done.has(`\0${pattern}`));
          if (channels.length === 0 && patterns.length === 0) break;
          await Promise.all([
            ...channels.map(([channel, raw]) => sub.sSubscribe(channel, raw, true)),
            ...patterns.map(([pattern, raw]) => sub.pSubscribe(pattern, raw, true)),
          ]);
          for (const [channel] of channels) done.add(channel);
          for (const [pattern] of patterns) done.add(`\0${pattern}`);
        }
        if (this.closed || this.sub !== sub) return;
        this.subscribed = true;
        for (const confirm of this.confirmations.values()) confirm();
        return;
      } catch (err) {
        // CLUSTERDOWN while a node restarts, or a node still unreachable: try again.
        this.log.debug({ err }, "redis cluster subscribe failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, RECONNECT_MAX_DELAY_MS).unref());
      }
    }
  }

  /** The subscriber's connections, each node's and the one for patterns. */
  private subscriberReady(sub: Cluster): boolean {
    // Each master holding a subscribed channel's slot has a pubSubClient (not in the typings).
    const clients: unknown[] = sub.masters.map((m) => (m as { pubSubClient?: unknown }).pubSubClient).filter((c) => c !== undefined);
    if (this.patterns.size > 0) clients.push(sub.pubSubNode?.client);
    return clients.every(ready);
  }

  private resubscribe(err: unknown, what: string): void {
    this.log.warn({ err, what }, "redis cluster subscribe failed: replacing the subscriber");
    this.replaceSubscriber();
  }

  private replaceSubscriber(): void {
    const old = this.sub;
    this.set("sub", false);
    old?.disconnect().catch(() => undefined);
    if (this.closed) return;
    checkCutOff({ client: this, up: () => this.up.pub, downs: () => this.pubDowns }, this.log, { connection: "sub", lastOutputBufferBytes: this.options.subscriberOutputBuffer() });
    void this.openSubscriber();
  }

  private poll(): void {
    if (this.closed) return;
    const pubReady = this.pubOpen && this.pub.masters.length > 0 && this.pub.masters.every((m) => ready(m.client));
    if (!pubReady) this.set("pub", false);
    else if (!this.up.pub) void this.probeClusterState();
    const sub = this.sub;
    if (sub && this.subscribed) {
      if (this.subscriberReady(sub)) this.set("sub", true);
      else {
        this.set("sub", false);
        this.replaceSubscriber();
      }
    }
    const allUp = this.up.pub && this.up.sub;
    this.downSince = allUp ? undefined : (this.downSince ?? Date.now());
    const now = Date.now();
    if (this.downSince !== undefined && now - this.downSince >= MAP_CHECK_MS && now - this.mapCheckedAt >= MAP_CHECK_MS) void this.checkMap();
  }

  /**
   * A side has been down for a while: if the cluster's masters are no longer those its client
   * knows (a replica took over a dead master), that client is replaced by one that discovers the
   * new map. A node merely down (restarting) leaves the map as it was, and the clients waiting.
   */
  private async checkMap(): Promise<void> {
    if (this.checkingMap) return;
    this.checkingMap = true;
    this.mapCheckedAt = Date.now();
    try {
      const masters = await this.clients.masters();
      if (!masters || this.closed) return;
      const map = masters.join();
      const stale = (cluster: Cluster | undefined) => cluster !== undefined && cluster.masters.length > 0 && mastersOf(cluster).join() !== map;
      if (!this.up.pub && stale(this.pub)) {
        this.log.warn({ role: "pub", masters }, "redis cluster masters changed (failover): reconnecting to the new ones");
        this.openPublisher();
      }
      if (!this.up.sub && stale(this.sub)) this.replaceSubscriber();
    } finally {
      this.checkingMap = false;
    }
  }

  /**
   * A node that restarts answers CLUSTERDOWN until it has heard from the others: the publishing
   * side is up once every master says cluster_state:ok.
   */
  private async probeClusterState(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      if (await everyMasterOk(this.pub)) this.set("pub", true);
    } catch (err) {
      this.log.debug({ err }, "redis cluster state probe failed");
    } finally {
      this.probing = false;
    }
  }

  private set(side: TransportSide, up: boolean): void {
    if (this.up[side] === up) return;
    this.up[side] = up;
    if (side === "pub" && !up) this.pubDowns++;
    this.options.onStatus(side, up);
  }
}
