import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { Server } from "socket.io";
import type { MetricsSnapshot } from "../ipc/messages";

/**
 * Event names become label values; an app that emits unbounded names (ids in the name) must not
 * blow up the series count. The first names seen keep their own label, later ones count as "other".
 */
export const MAX_EVENT_NAMES = 64;
export const OTHER_EVENTS = "other";

/**
 * The two steps of socket.io-adapter's in-memory `broadcast` (and `broadcastWithAck`), through
 * which every local delivery of every adapter passes (the cluster, fleet and Redis adapters all
 * deliver locally with it): `_encode` once per broadcast, then `apply` over the recipients. Other
 * callers of `apply` (fetchSockets, socketsJoin, ...) do not encode first.
 */
interface DeliveringAdapter {
  _encode(packet: { data?: unknown[] }, options: unknown): unknown;
  apply(options: unknown, callback: (socket: unknown) => void): void;
}

/**
 * An adapter that delivers locally without `_encode` before `apply` (the fleet adapter's
 * per-client offset forms) reports its deliveries through this method, which the metrics install.
 */
export const COUNT_DELIVERIES = Symbol("sockfleet.countDeliveries");
/** `direct`: how many of the recipients got the frame straight on their WebSocket (worker/direct-send.ts). */
export type CountDeliveries = (event: unknown, recipients: number, direct?: number) => void;

/** The part of a Socket.IO socket the metrics count direct emits on. */
interface EmittingSocket {
  emit(event: string, ...args: unknown[]): boolean;
}

/** The part of an Engine.IO socket the metrics read. */
interface EngineSocket {
  on(event: "close", listener: (reason: string) => void): void;
}

/**
 * One worker's metrics, in its own registry with a `worker` label on every series, so the
 * primary can merge every worker's JSON snapshot into one scrape without series colliding.
 * Event-loop lag, heap and the other Node.js process metrics come from prom-client's defaults.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly opened: Counter<string>;
  private readonly closed: Counter<"reason">;
  private readonly received: Counter<"event">;
  private readonly emitted: Counter<"event">;
  private readonly direct: Counter;
  private readonly eventNames = new Set<string>();

  constructor(workerId: number) {
    this.registry.setDefaultLabels({ worker: String(workerId) });
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.opened = new Counter({ name: "sockfleet_connections_opened_total", help: "Engine.IO connections (clients) opened on this worker.", registers });
    this.closed = new Counter({ name: "sockfleet_connections_closed_total", help: "Engine.IO connections closed on this worker, by reason.", labelNames: ["reason"], registers });
    this.received = new Counter({ name: "sockfleet_events_received_total", help: `Socket.IO events received from clients, by event name (at most ${MAX_EVENT_NAMES} names, then "${OTHER_EVENTS}").`, labelNames: ["event"], registers });
    this.emitted = new Counter({ name: "sockfleet_events_emitted_total", help: `Socket.IO events delivered to this worker's clients (a broadcast counts once per recipient), by event name (at most ${MAX_EVENT_NAMES} names, then "${OTHER_EVENTS}").`, labelNames: ["event"], registers });
    this.direct = new Counter({ name: "sockfleet_direct_writes_total", help: "Broadcast deliveries written straight to a client's WebSocket, past engine.io's queue (--direct-writes); the rest of sockfleet_events_emitted_total took engine.io's path.", registers });
  }

  /** Counts the connections and events of `io`; call before the app attaches its handlers. */
  instrument(io: Server): void {
    new Gauge({
      name: "sockfleet_connected_clients",
      help: "Clients connected to this worker now.",
      registers: [this.registry],
      collect() {
        this.set(io.engine.clientsCount);
      },
    });
    // One listener for every connection: "close" comes once per Engine.IO socket, so neither a
    // closure nor once()'s wrapper per connection (about 200 bytes each) is needed.
    const onClose = (reason: string): void => this.closed.inc({ reason });
    io.engine.on("connection", (socket: EngineSocket) => {
      this.opened.inc();
      socket.on("close", onClose);
    });
    // Every namespace, including those the app creates later.
    io.on("new_namespace", (nsp) => this.instrumentNamespace(nsp));
    this.instrumentNamespace(io.of("/"));
  }

  snapshot(): Promise<MetricsSnapshot> {
    return this.registry.getMetricsAsJSON() as Promise<MetricsSnapshot>;
  }

  private instrumentNamespace(nsp: ReturnType<Server["of"]>): void {
    this.countBroadcasts(nsp.adapter as unknown as DeliveringAdapter);
    // With connection-state recovery on, socket.emit goes through the adapter too (to be logged).
    const emitsBypassAdapter = !(nsp.server as unknown as { opts: { connectionStateRecovery?: unknown } }).opts.connectionStateRecovery;
    const metrics = this;
    function countedEmit(this: EmittingSocket, event: string, ...args: unknown[]): boolean {
      const sent = Object.getPrototypeOf(this).emit.call(this, event, ...args) as boolean;
      metrics.emitted.inc({ event: metrics.eventClass(event) });
      return sent;
    }
    // Shared by every socket of the namespace, not a closure per socket.
    const countReceived = (event: unknown): void => this.received.inc({ event: this.eventClass(event) });
    nsp.on("connection", (socket) => {
      socket.onAny(countReceived);
      // One shared function, not a listener per socket (onAnyOutgoing would also run per recipient of every broadcast).
      if (emitsBypassAdapter) (socket as unknown as EmittingSocket).emit = countedEmit;
    });
  }

  /**
   * Counts deliveries once per broadcast, with its number of recipients, where the adapter knows
   * them: label hashing per recipient (what a per-socket onAnyOutgoing listener costs) was a
   * measurable share of the delivery path at high fan-out.
   */
  private countBroadcasts(adapter: DeliveringAdapter): void {
    const encode = adapter._encode;
    const apply = adapter.apply;
    if (typeof encode !== "function" || typeof apply !== "function") throw new Error("socket.io-adapter without _encode/apply: delivery metrics cannot be counted");
    let event: unknown;
    let encoded = false;
    // An _encode inside an apply (encoding per form, lazily) does not announce a broadcast.
    let applying = false;
    const emitted = this.emitted;
    const direct = this.direct;
    const eventClass = (name: unknown): string => this.eventClass(name);
    (adapter as unknown as { [COUNT_DELIVERIES]: CountDeliveries })[COUNT_DELIVERIES] = (name, recipients, directs = 0) => {
      if (recipients > 0) emitted.inc({ event: eventClass(name) }, recipients);
      if (directs > 0) direct.inc(directs);
    };
    adapter._encode = function (packet, options) {
      if (!applying) {
        event = packet.data?.[0];
        encoded = true;
      }
      return encode.call(this, packet, options);
    };
    adapter.apply = function (options, callback) {
      if (!encoded) {
        applying = true;
        try {
          return apply.call(this, options, callback);
        } finally {
          applying = false;
        }
      }
      encoded = false;
      let recipients = 0;
      apply.call(this, options, (socket) => {
        recipients++;
        callback(socket);
      });
      if (recipients > 0) emitted.inc({ event: eventClass(event) }, recipients);
    };
  }

  private eventClass(event: unknown): string {
    const name = String(event);
    if (this.eventNames.has(name)) return name;
    if (this.eventNames.size >= MAX_EVENT_NAMES) return OTHER_EVENTS;
    this.eventNames.add(name);
    return name;
  }
}
