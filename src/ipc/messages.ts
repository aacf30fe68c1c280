/**
 * The typed messages sockfleet's primary and workers exchange over the cluster IPC channel.
 * Every message carries `sf` as its tag, so they never collide with the cluster adapter's own
 * traffic (tagged `source: "_sio_adapter"`) that shares the channel.
 */
import type { MetricObjectWithValues, MetricValue } from "prom-client";
import type { CatchUp, RouteJoin, RouteLeave, Stamp } from "../primary/room-routes";
import type { RemoteCatchUp } from "../tiers/redis/host-routes";
import type { LateCatchUp } from "../tiers/redis/log-routes";
import type { RecoveredSession } from "../tiers/recovery/store";
import type { RedisTierStatus } from "../tiers/redis/client";

/** One worker's metrics as prom-client's JSON form, which the primary aggregates. */
export type MetricsSnapshot = MetricObjectWithValues<MetricValue<string>>[];

/** Primary -> worker. */
export type ToWorker =
  /**
   * The offset the primary assigned to the broadcast this worker published with `sequence: id`.
   * `away`: the shared log routed it to a room no worker of this host held a member of, so this
   * worker delivers it to nobody (tiers/redis/log-routes.ts).
   */
  | { sf: "offset"; id: number; offset: string; away?: boolean }
  /** Answer to a "restore" request: the session and its missed packets, or null for a fresh session. */
  | { sf: "restored"; id: number; session: RecoveredSession | null }
  /**
   * A TCP connection handed over with its socket handle; `head` holds the bytes already read, base64.
   * The worker confirms with "accepted" so the primary can let go of its copy of the handle.
   */
  | { sf: "connection"; handoff: number; head: string }
  /**
   * Whole-host readiness changed (served by every worker's /readyz). `redis` is the hosts tier in
   * bridge mode, absent without Redis or in adapter mode (where each worker reports its own).
   */
  | { sf: "host-state"; ready: boolean; redis?: RedisTierStatus }
  /** Close the Socket.IO server (clients are told to reconnect) and exit. */
  | { sf: "shutdown" }
  /**
   * Rolling restart: this worker was replaced. Tell its clients to reconnect, spread over
   * `spreadMs` (the balancer already sends new sessions elsewhere), then close and exit.
   */
  | { sf: "drain"; spreadMs: number }
  /**
   * The whole host drains (scale-in): tell every client to reconnect (to other hosts), spread over
   * `spreadMs`, then keep running without clients; answer "clients-drained".
   */
  | { sf: "drain-clients"; spreadMs: number }
  /** Broadcasts from host `origin` never reached this host (Redis pub/sub gap): tell the app. */
  | { sf: "missed-messages"; origin: string; missed: number }
  /** Report this worker's metrics, answering with the same `id`. */
  | { sf: "metrics-request"; id: number }
  /**
   * Answer to a "routes" announcement with joins: the room broadcasts this worker was skipped for
   * since the joins, each to deliver right after the `at`-th frame of the link (primary/room-routes.ts);
   * with room routing across hosts, what other hosts published to those rooms meanwhile (`remote`
   * with --recovery off, `late` with recovery on: see tiers/redis/host-routes.ts and log-routes.ts).
   */
  | { sf: "routes-ack"; id: number; items: CatchUp[]; remote?: RemoteCatchUp[]; late?: LateCatchUp[] };

/** Worker -> primary. */
export type ToPrimary =
  /** The worker serves: app loaded, Socket.IO attached. */
  | { sf: "ready" }
  /** The worker owns the connection handed over as `handoff`. */
  | { sf: "accepted"; handoff: number }
  /**
   * Connections handed over as `handoffs` closed in this worker (batched per event-loop turn), so
   * the primary's connection counts (--max-connections, --max-connections-per-ip) go down.
   */
  | { sf: "released"; handoffs: number[] }
  /** An Engine.IO session opened or closed on this worker (drives sticky routing and balancing). */
  | { sf: "session"; sid: string; open: boolean }
  /** Start-up failed for a reason a respawn cannot fix (for example the app module throws on load). */
  | { sf: "fatal"; message: string }
  /** Connection-state recovery: a socket connected (pid and data on its first join) or joined rooms. */
  | { sf: "rooms-joined"; nsp: string; sid: string; rooms: string[]; pid?: string; data?: unknown; offsets?: boolean }
  /** ...left rooms. */
  | { sf: "rooms-left"; nsp: string; sid: string; rooms: string[] }
  /** ...is gone from this worker. */
  | { sf: "socket-ended"; nsp: string; sid: string }
  /** ...disconnected in a way the client will try to recover from (socket.io's persistSession). */
  | { sf: "session-persisted"; nsp: string; sid: string; pid: string; rooms: string[]; data: unknown }
  /** ...asks for the session `pid` and what it missed since `offset`. */
  | { sf: "restore"; id: number; nsp: string; pid: string; offset: string }
  /** Every client connected when "drain-clients" came (and any that opened since) was told to go. */
  | { sf: "clients-drained"; clients: number }
  /**
   * Room routing (data link): rooms whose first member joined this worker (with the join's host
   * monotonic time) or whose last member left, batched per event-loop turn, and at least every
   * 100 ms (empty). `upTo`: every join stamped before it is in this or an earlier announcement.
   * `id` (set when there are joins) asks for a "routes-ack".
   */
  | { sf: "routes"; id?: number; joins: RouteJoin[]; leaves: RouteLeave[]; upTo: Stamp }
  /** Answer to a metrics request. */
  | { sf: "metrics"; id: number; metrics: MetricsSnapshot };

/**
 * A restored session whose socket never materialises (client gone meanwhile) is dropped by its
 * worker after this; the primary routes the session's rooms to that worker as long.
 */
export const RECOVERING_TTL_MS = 10_000;

/** Environment variable through which the primary hands its validated config to each worker. */
export const WORKER_CONFIG_ENV = "SOCKFLEET_WORKER_CONFIG";

/** Environment variable naming the primary's data-channel socket (see primary/data-hub.ts). */
export const DATA_PATH_ENV = "SOCKFLEET_DATA_PATH";

export type SockfleetMessage = ToWorker | ToPrimary;

export function isSockfleetMessage(value: unknown): value is SockfleetMessage {
  return typeof value === "object" && value !== null && typeof (value as { sf?: unknown }).sf === "string";
}

function ignore(): void {}

/** Sends from a worker to its primary; a closed channel means the worker is exiting anyway. */
export function sendToPrimary(message: ToPrimary): void {
  if (process.connected && process.send) process.send(message, undefined, {}, ignore);
}
