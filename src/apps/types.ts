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
