import type { Config } from "../../config/schema";
import type { LimitReporter } from "../../observability/limits";
import type { Logger } from "../../observability/logger";
import type { ClusterRelay } from "../cluster/relay";
import type { HostRecovery } from "../recovery/host";
import type { Channels } from "./channels";
import { LogRoutes } from "./log-routes";
import { BRIDGE_TIMEOUT_MS } from "./remote-bridges";
import { SessionMirror } from "./session-mirror";
import { StreamOrder } from "./stream-order";
import type { RedisTransport } from "./transport";

export interface FleetRecoveryDeps {
  config: Config;
  bridgeId: string;
  channels: Channels;
  redis: RedisTransport;
  pubUp: () => boolean;
  relay: ClusterRelay;
  recovery: HostRecovery;
  limits: LimitReporter;
  /** Whether a worker of this host holds a member of the room (primary/room-routes.ts). */
  hostHas: (nsp: string, room: string) => boolean;
  /** Whether another host's bridge is alive. */
  hostAlive: (bridge: string) => boolean;
  /** Tells the other hosts this one took session `pid` over. */
  announceTaken: (pid: string) => void;
  log: Logger;
}

/**
 * Connection-state recovery across hosts, in the bridge: the shared log (stream-order.ts), its room
 * routing (log-routes.ts) and the session mirror (session-mirror.ts), wired to the host's recovery
 * store and relay.
 */
export class FleetRecovery {
  readonly order: StreamOrder;
  readonly routes: LogRoutes;
  readonly mirror: SessionMirror;

  private readonly recovery: HostRecovery;

  constructor(deps: FleetRecoveryDeps) {
    const { config, channels, relay, recovery, log } = deps;
    this.recovery = recovery;
    const bound = {
      maxBytes: config.maxChannelBytes,
      onDrop: (details: Record<string, unknown>) => deps.limits.hit("max-channel-bytes", { queue: "shared-log", ...details }, "redis unreachable and queue full: broadcasts stay on this host"),
    };
    // On Redis Cluster the log's channels share the stream's slot (hash tag): its scripts SPUBLISH there.
    const feed = { channel: channels.logFeed, sync: channels.logSync(deps.bridgeId), publish: config.redisSharded ? ("SPUBLISH" as const) : ("PUBLISH" as const) };
    this.order = new StreamOrder(channels.log, deps.bridgeId, config.recoveryMaxPackets, bound, deps.redis, feed, deps.pubUp, {
      deliver: (message, origin, options) => relay.deliverOrdered(message, origin, options),
      record: (message, streamId, args) => relay.recordOrdered(message, streamId, args),
      follow: (streamId) => recovery.store.followStream(streamId),
      orderBroke: (streamId) => recovery.store.orderBroke(streamId),
      late: (message, streamId, args, localOffset) => recovery.sequenceLate(message, streamId, args, localOffset),
      away: (origin) => relay.settleAway(origin),
    }, log);
    this.routes = new LogRoutes({
      channels,
      redis: deps.redis,
      reader: this.order.feedReader(),
      late: (entry) => this.order.late(entry),
      holds: (nsp, room) => deps.hostHas(nsp, room) || recovery.store.holdsRoom(nsp, room),
    }, log.child({ component: "log-routes" }));
    this.order.feedReader().setRooms(this.routes);
    this.order.setRouter(this.routes);
    this.mirror = new SessionMirror(deps.redis, deps.pubUp, {
      bridgeId: deps.bridgeId,
      channels,
      windowMs: config.recoveryWindow,
      takeTimeoutMs: BRIDGE_TIMEOUT_MS + 1_000,
      snapshot: (pid) => recovery.store.share(pid),
      pids: () => recovery.store.pids(),
      hostAlive: deps.hostAlive,
      announceTaken: deps.announceTaken,
    }, log);
    recovery.setFleet({
      changed: (pid) => this.mirror.changed(pid),
      take: (pid, nsp) => this.mirror.take(pid, nsp),
      readUpTo: (streamId) => this.order.readUpTo(streamId),
      cover: (nsp, rooms, from) => this.routes.cover(nsp, rooms, from),
    });
  }

  pubChanged(up: boolean): void {
    if (up) {
      this.order.onPubUp();
      this.mirror.rewriteAll();
    } else {
      this.order.onPubDown();
    }
  }

  /** The subscribing connection went down: room channels and the log's feed are subscribed again on the next one. */
  subDown(): void {
    this.routes.subscriberDown();
    this.order.onSubDown();
  }

  heartbeat(): void {
    this.mirror.heartbeat();
  }

  /** Another host took session `pid` over: it is no longer this host's to restore. */
  taken(pid: string): void {
    this.recovery.store.taken(pid);
  }

  async close(): Promise<void> {
    this.routes.close();
    this.mirror.flush();
    this.mirror.close();
    await this.order.close();
  }
}
