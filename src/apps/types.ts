import type { Server } from "socket.io";
import type { Logger } from "pino";
import type { JoinAuthorizer, JoinRefusedError } from "../auth/join-guard";

/**
 * Broadcasts sent from another host that never reached this host's clients: Redis cut this host's
 * subscription (it read too slowly, see README "Missed broadcasts"). Bridge mode with recovery off:
 * every worker of the host hears of it once per gap, with its origin and size. Adapter mode: the
 * worker whose subscription was cut hears of it, without origin or size (the redis-adapter's
 * messages are not numbered).
 */
export interface MissedMessages {
  /** The other host's `--host-id`; undefined in adapter mode. */
  readonly origin?: string;
  /** How many of its broadcasts were missed (to any room or namespace); undefined in adapter mode. */
  readonly missed?: number;
}

/** Events sockfleet tells an app about, by name. */
export interface AppEvents {
  "missed-messages": [gap: MissedMessages];
}

/** What sockfleet hands to an app module, besides the Socket.IO server. */
export interface AppContext {
  /** Name of this host in the fleet (`--host-id`, default the machine's hostname). */
  readonly host: string;
  /** Id of this worker process, unique on its host while the primary runs. */
  readonly worker: number;
  /** Process id of this worker. */
  readonly pid: number;
  /** Structured logger bound to `{ role: "worker", host, worker, pid }`. */
  readonly logger: Logger;
  /** Serves the files of an absolute directory over HTTP at `/` (index.html for `/`). */
  serveStatic(dir: string): void;
  /**
   * Adds a check on every room join of this worker's sockets (README "App modules"): `socket.join`
   * of a room any authoriser does not allow rejects with a {@link JoinRefusedError} and the socket
   * stays out of it. Every authoriser must allow; the socket's own id room is always allowed.
   */
  authorizeJoin(authorizer: JoinAuthorizer): void;
  /**
   * Listens for a fleet event. "missed-messages": this host's clients missed broadcasts from another
   * host; an app resynchronises them, e.g. by `io.local.emit("resync")` so clients fetch fresh state.
   */
  on<E extends keyof AppEvents>(event: E, listener: (...args: AppEvents[E]) => void): void;
  /** Who is in a room across the fleet (README "Presence"). */
  readonly presence: Presence;
}

/** A socket in a room, wherever in the fleet it is connected. */
export interface PresenceMember {
  /** Socket id. */
  id: string;
  /** Host (`--host-id`) and worker id serving it. */
  host: string;
  worker: number;
  /** Its `socket.data` (structured-cloneable, as for fetchSockets). */
  data: unknown;
}

/** One page of a room's members, by socket id; `next`, when set, asks for the following page. */
export interface PresencePage {
  members: PresenceMember[];
  next?: string;
}

/** A socket of this worker joined (`joined`) or left a room (its own id room excluded). */
export interface PresenceChange {
  nsp: string;
  room: string;
  id: string;
  joined: boolean;
}

/**
 * Room presence across every worker and host. Each query is one request to every worker of the
 * fleet, answered from its own rooms: a count costs O(1) per worker, a page at most `limit`
 * members per worker (default 100, at most 1000). A worker that does not answer within 5 s is
 * left out. Rejects with ChannelFullError like any serverSideEmit when the data channel is full.
 */
export interface Presence {
  /** Members of `room` (default namespace "/") on every worker and host. */
  count(room: string, options?: { nsp?: string }): Promise<number>;
  /** The members after `after` (a previous page's `next`), at most `limit`, ordered by socket id. */
  members(room: string, options?: { nsp?: string; after?: string; limit?: number }): Promise<PresencePage>;
  /**
   * Calls `listener` on every room join and leave of this worker's sockets, in every namespace.
   * To tell a room's members across the fleet, broadcast to the room from the listener: room
   * broadcasts reach only the workers holding a member.
   */
  onChange(listener: (change: PresenceChange) => void): void;
}

/**
 * An app module's default export (ESM) or `module.exports` (CommonJS). It is called once per
 * worker, after the Socket.IO server is attached and before the worker reports ready.
 */
export type App = (io: Server, ctx: AppContext) => void | Promise<void>;

/** Identity helper that gives an app module full type inference: `export default defineApp((io, ctx) => ...)`. */
export function defineApp(app: App): App {
  return app;
}
