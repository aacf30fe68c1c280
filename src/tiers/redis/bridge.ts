import { randomBytes } from "node:crypto";
import { decode, encode } from "notepack.io";
import type { Config } from "../../config/schema";
import type { Logger } from "../../observability/logger";
import type { LimitReporter } from "../../observability/limits";
import { ADAPTER_SOURCE, MessageType, type AdapterMessage, type BroadcastOrigin, type ClusterRelay } from "../cluster/relay";
import { channels, type Channels } from "./channels";
import type { RedisTierStatus } from "./client";
import { fromEmitterBroadcast, fromEmitterRequest } from "./emitter";
import type { HostRecovery } from "../recovery/host";
import type { EncodedArgs } from "../recovery/replay-log";
import { completeDecoderReset } from "./decoder-reset";
import { GapDetector, SequenceStamp, type Gap } from "./gap-detector";
import { FleetRecovery } from "./fleet-recovery";
import { HostRoutes, type CatchUpAnswer, type CatchUpRequest } from "./host-routes";
import type { LogRoutes } from "./log-routes";
import { Outbox } from "./outbox";
import { RedisHeadroom } from "./redis-headroom";
import { RemoteBridges } from "./remote-bridges";
import type { StreamOrder } from "./stream-order";
import { createTransport, type RedisTransport, type TransportSide } from "./transport";

/** A bridge announces itself this often, with the adapter uids of its host (remote-bridges.ts times them out). */
export const BRIDGE_HEARTBEAT_MS = 1_000;

/** What travels on the bus: an adapter message, or a bridge heartbeat listing its host's adapters. */
type Envelope =
  /**
   * `s`: the broadcast's sequence number on its bridge (see gap-detector.ts); broadcasts only.
   * `u`: with room routing (host-routes.ts), its number among the bridge's broadcasts on the bus.
   */
  | { b: string; m: AdapterMessage; s?: number; u?: number }
  /** `s`: the newest broadcast sequence number the bridge has published; `u`: of those on the bus. */
  | { b: string; hb: Array<[uid: string, nsp: string]>; s?: number; u?: number }
  /** The sender's host took over session `taken` (connection-state recovery): forget it. */
  | { b: string; taken: string };

export interface BridgeStats {
  published: number;
  received: number;
  dropped: number;
  queued: number;
}

/**
 * The hosts tier in bridge mode, in the primary: connects the local bus (the {@link ClusterRelay})
 * to every other host's over Redis, with one publishing and one subscribing connection whatever
 * the worker count.
 *
 * - Requests, broadcasts and heartbeats from local workers go to one bus channel; every other
 *   bridge relays them to all its workers. A bridge ignores its own messages, so nothing is
 *   delivered twice.
 * - A response is published only to the channel of the bridge whose host owns the requester
 *   (learnt from the uids each bridge's messages and heartbeats carry), never to the bus.
 * - A bridge whose heartbeat stops is gone: ADAPTER_CLOSE is synthesized for each of its adapters,
 *   so local cluster adapters drop them from their server count and settle pending requests.
 * - Broadcasts and requests a @socket.io/redis-emitter publishes on the redis-adapter channels are
 *   translated into cluster adapter messages and relayed to every local worker.
 */
export class RedisBridge {
  readonly id: string;
  private readonly channels: Channels;
  /** One Redis node or a Redis Cluster: see transport.ts. */
  private readonly redis: RedisTransport;
  /** Recovery across hosts (recovery on): the shared log, its room routing, the session mirror. */
  private readonly fleet?: FleetRecovery;
  private readonly log: Logger;
  private readonly remotes: RemoteBridges;
  /** What this bridge publishes, kept while Redis is unreachable. */
  private readonly outbox: Outbox;
  private received = 0;
  private pubUp = false;
  private subUp = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;
  private readonly stamp = new SequenceStamp();
  private readonly gaps: GapDetector;
  /** Output buffer and shared-log lag, sampled for the headroom metrics. */
  readonly headroom: RedisHeadroom;
  /** With recovery off: room broadcasts go only to hosts holding a member. */
  readonly hostRoutes?: HostRoutes;
  /** With recovery on: the shared log's room broadcasts go only to hosts holding a member. */
  readonly logRoutes?: LogRoutes;

  constructor(
    config: Config,
    logger: Logger,
    private readonly relay: ClusterRelay,
    private readonly onStatus: (status: RedisTierStatus) => void,
    recovery: HostRecovery | undefined,
    limits: LimitReporter,
    /** Broadcasts from another host were missed (pub/sub only: the shared log loses none). */
    onGap: (gap: Gap) => void = () => undefined,
    /** Whether a worker of this host holds a member of the room (primary/room-routes.ts). */
    hostHas: (nsp: string, room: string) => boolean = () => true,
  ) {
    this.id = `${config.hostId}:${randomBytes(4).toString("hex")}`;
    this.channels = channels(config.redisPrefix, config.redisSharded);
    this.log = logger.child({ component: "redis-bridge", bridge: this.id });
    this.gaps = new GapDetector(onGap, this.log);
    // Before the transport, whose status callback flushes it.
    this.outbox = new Outbox({ publish: (channel, payload) => this.redis.publish(channel, payload) }, () => this.pubUp, config.maxChannelBytes, limits, this.log);
    // For the log reader and publisher; the subscriber is replaced on a drop in any case.
    completeDecoderReset();
    this.redis = createTransport(config, logger, {
      onStatus: (side, up) => this.onTransportStatus(side, up),
      subscriberOutputBuffer: () => this.headroom.subscriberOutputBuffer(),
    });
    this.subscribe();
    this.remotes = new RemoteBridges((message) => relay.deliverRemote(message), (bridge) => this.hostRoutes?.bridgeGone(bridge), this.log);
    if (recovery) {
      this.fleet = new FleetRecovery({
        config,
        bridgeId: this.id,
        channels: this.channels,
        redis: this.redis,
        pubUp: () => this.pubUp,
        relay,
        recovery,
        limits,
        hostHas,
        hostAlive: (bridge) => this.remotes.has(bridge),
        announceTaken: (pid) => this.send(this.channels.bus, { b: this.id, taken: pid }),
        log: this.log,
      });
      this.logRoutes = this.fleet.routes;
    }
    if (!recovery) {
      this.hostRoutes = new HostRoutes({
        bridgeId: this.id,
        channels: this.channels,
        subscribe: (channel, listener, onSubscribed) => this.redis.subscribe(channel, listener, onSubscribed),
        unsubscribe: (channel) => this.redis.unsubscribe(channel),
        send: (channel, payload, onReceivers) => this.outbox.send(channel, payload, onReceivers),
        publishers: () => this.remotes.ids(),
        deliver: (message) => relay.deliverRemote(message),
        onGap,
        maxBytes: config.maxChannelBytes,
      }, this.log.child({ component: "host-routes" }));
    }
    const routes = this.hostRoutes;
    relay.setUplink({
      publish: (message) => {
        if (message.type !== MessageType.BROADCAST) return this.send(this.channels.bus, { b: this.id, m: message });
        const s = this.stamp.next();
        if (routes?.route(message, s)) return;
        this.send(this.channels.bus, { b: this.id, m: message, s, ...(routes ? { u: routes.nextBusSeq() } : {}) });
      },
      publishResponse: (message) => this.publishResponse(message),
      ...(this.fleet ? { order: (message: AdapterMessage, origin: BroadcastOrigin, args?: EncodedArgs) => this.fleet!.order.order(message, origin, args) } : {}),
    });
    const order = this.fleet?.order;
    const logReader = order ? { key: this.channels.log, position: () => order.readPosition(), read: () => order.counters().read } : undefined;
    this.headroom = new RedisHeadroom(this.redis, () => this.pubUp, this.channels.bus, logReader, this.log);
    this.timers.push(setInterval(() => this.heartbeat(), BRIDGE_HEARTBEAT_MS));
    this.timers.push(setInterval(() => this.remotes.expire(), BRIDGE_HEARTBEAT_MS / 2));
    for (const timer of this.timers) timer.unref();
  }

  status(): RedisTierStatus {
    return this.pubUp && this.subUp ? "connected" : "degraded";
  }

  private reported: RedisTierStatus | undefined;

  private reportStatus(): void {
    const status = this.status();
    if (status === this.reported) return;
    this.reported = status;
    this.log.info({ status, ...this.counters() }, "redis tier status");
    this.onStatus(status);
  }

  /** The shared log's counters (recovery on), undefined otherwise. */
  sharedLog(): ReturnType<StreamOrder["counters"]> | undefined {
    return this.fleet?.order.counters();
  }

  counters(): Readonly<BridgeStats> & { log?: ReturnType<StreamOrder["counters"]> } {
    const { published, dropped } = this.outbox;
    return { published, received: this.received, dropped, queued: this.outbox.length, ...(this.fleet ? { log: this.fleet.order.counters() } : {}) };
  }

  /** Stops heartbeats and closes both connections; other hosts notice by the heartbeat timeout. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    this.headroom.close();
    this.hostRoutes?.close();
    const fleetClosed = this.fleet?.close();
    await this.redis.close();
    await fleetClosed;
  }

  private onTransportStatus(side: TransportSide, up: boolean): void {
    if (side === "pub") {
      this.pubUp = up;
      if (up) this.outbox.flush();
      this.fleet?.pubChanged(up);
    } else {
      this.subUp = up;
      // Room subscriptions are made again on the next connection: joins meanwhile wait for that.
      if (!up) {
        this.hostRoutes?.subscriberDown();
        this.fleet?.subDown();
      }
    }
    this.reportStatus();
  }

  private subscribe(): void {
    this.redis.subscribe(this.channels.bus, (raw) => this.onBus(raw));
    this.redis.subscribe(this.channels.responses(this.id), (raw) => this.onResponse(raw));
    this.redis.pSubscribe(this.channels.emitterBroadcasts, (raw, channel) => this.onEmitterBroadcast(raw, channel));
    this.redis.pSubscribe(this.channels.emitterRequests, (raw, channel) => this.onEmitterRequest(raw, channel));
  }

  private publishResponse(message: AdapterMessage & { requesterUid: string }): void {
    const bridge = this.remotes.ownerOf(message.requesterUid);
    // The requester is unknown: it is gone, and its request with it.
    if (bridge === undefined) return;
    this.send(this.channels.responses(bridge), { b: this.id, m: message });
  }

  private heartbeat(): void {
    if (!this.pubUp) return; // a stale heartbeat is worthless: never queued
    const hb = this.relay.localAdapters().map(({ uid, nsp }) => [uid, nsp] as [string, string]);
    const u = this.hostRoutes ? { u: this.hostRoutes.currentBusSeq } : {};
    this.outbox.publishNow(this.channels.bus, encode({ b: this.id, hb, s: this.stamp.current, ...u } satisfies Envelope));
    this.fleet?.heartbeat();
  }

  private send(channel: string, envelope: Envelope): void {
    this.outbox.send(channel, encode(envelope));
  }

  private decodeEnvelope(raw: Buffer): Envelope | undefined {
    try {
      const envelope = decode(raw) as Envelope;
      return typeof envelope?.b === "string" ? envelope : undefined;
    } catch (err) {
      this.log.warn({ err }, "undecodable message on the bridge bus");
      return undefined;
    }
  }

  private onBus(raw: Buffer): void {
    const envelope = this.decodeEnvelope(raw);
    if (!envelope || envelope.b === this.id) return;
    this.received++;
    const routes = this.hostRoutes;
    if ("s" in envelope && typeof envelope.s === "number") {
      routes?.heard(envelope.b, envelope.s);
      // With room routing, room broadcasts may rightly skip this host: only bus numbers show a gap.
      const seq = routes ? envelope.u : envelope.s;
      if (typeof seq === "number") {
        if ("hb" in envelope) this.gaps.heartbeat(envelope.b, seq);
        else this.gaps.broadcast(envelope.b, seq);
      }
    }
    if ("hb" in envelope) return this.remotes.heartbeat(envelope.b, envelope.hb);
    if (!("m" in envelope)) {
      this.remotes.heard(envelope.b);
      if ("taken" in envelope) this.fleet?.taken(envelope.taken);
      else if ("cr" in envelope) routes?.onRequest(envelope as unknown as CatchUpRequest);
      return;
    }
    // Tagged with publisher and number: a worker places room broadcasts caught up after a join by them.
    const tag = routes && typeof envelope.s === "number" ? { sfo: envelope.b, sfs: envelope.s } : {};
    const message: AdapterMessage = { ...envelope.m, source: ADAPTER_SOURCE, ...tag };
    this.remotes.heard(envelope.b, { uid: message.uid, nsp: message.nsp, closed: message.type === MessageType.ADAPTER_CLOSE });
    this.relay.deliverRemote(message);
  }

  private onResponse(raw: Buffer): void {
    const envelope = this.decodeEnvelope(raw);
    if (envelope && "ca" in envelope) return this.hostRoutes?.onAnswer(envelope as unknown as CatchUpAnswer);
    if (!envelope || !("m" in envelope)) return;
    this.received++;
    this.remotes.heard(envelope.b, { uid: envelope.m.uid, nsp: envelope.m.nsp, closed: false });
    this.relay.deliverResponse({ ...envelope.m, source: ADAPTER_SOURCE } as AdapterMessage);
  }

  private onEmitterBroadcast(raw: Buffer, channel: string): void {
    if (!this.channels.parseBroadcast(channel)) return;
    const message = fromEmitterBroadcast(raw);
    if (message) this.relay.deliverRemote(message);
  }

  private onEmitterRequest(raw: Buffer, channel: string): void {
    const nsp = this.channels.parseRequest(channel);
    const message = nsp === undefined ? undefined : fromEmitterRequest(nsp, raw);
    if (message) this.relay.deliverRemote(message);
  }
}
