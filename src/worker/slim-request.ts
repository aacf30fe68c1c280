import http from "node:http";
import net from "node:net";
import type { Server } from "socket.io";

/** What Socket.IO reads from a connection's request to build `socket.handshake`, and apps commonly read. */
export interface SlimRequest {
  headers: http.IncomingHttpHeaders;
  url?: string;
  method?: string;
  httpVersion: string;
  /** engine.io's parsed query string (the handshake's `query`). */
  _query?: Record<string, string>;
  /** Stands in for the TCP socket: its address and whether it was TLS (`handshake.secure`). */
  socket: { remoteAddress?: string; remotePort?: number; encrypted: boolean };
  connection: SlimRequest["socket"];
  [key: string]: unknown;
}

/** Own properties every IncomingMessage has: Node's stream and parser state, not set by an app. */
const NODE_OWN = new Set(Object.keys(new http.IncomingMessage(new net.Socket())));
/** Set on the request by engine.io for its own use during the upgrade, never read afterwards. */
const ENGINE_OWN = new Set(["websocket", "res", "cleanup", "_query"]);

/**
 * A plain copy of what a request carries past its handshake: headers, URL, method, query, the
 * peer's address, and the properties an app's engine middleware (`io.engine.use`) set on it, such
 * as a session.
 */
export function slimRequest(req: http.IncomingMessage & { _query?: Record<string, string> }): SlimRequest {
  const tcp = req.socket as (net.Socket & { encrypted?: boolean }) | null;
  const socket = { remoteAddress: tcp?.remoteAddress, remotePort: tcp?.remotePort, encrypted: tcp?.encrypted === true };
  const slim: SlimRequest = { headers: req.headers, url: req.url, method: req.method, httpVersion: req.httpVersion, _query: req._query, socket, connection: socket };
  for (const key of Object.keys(req)) {
    if (!NODE_OWN.has(key) && !ENGINE_OWN.has(key) && !(key in slim)) slim[key] = (req as unknown as Record<string, unknown>)[key];
  }
  return slim;
}

type Listener = (...args: unknown[]) => void;

/** engine.io's WebSocketResponse: an EventEmitter holding the upgrade request. */
interface UpgradeResponse {
  req: unknown;
  listenerCount(event: string): number;
}

/** The source of the listener engine.io 6's WebSocketResponse puts on the TCP socket to relay its `close`. */
const RELAY_SOURCE = '() => this.emit("close")';

/**
 * The TCP socket's `close` listener that relays to the upgrade's WebSocketResponse: the last
 * `close` listener, added once by the response's constructor just before the middlewares ran.
 * Undefined unless it is exactly that (another engine.io version, another listener): then it is
 * left alone.
 */
function relayListener(tcp: net.Socket): Listener | undefined {
  const listeners = tcp.rawListeners("close") as Array<Listener & { listener?: Listener }>;
  const relay = listeners[listeners.length - 1]?.listener;
  return relay && Function.prototype.toString.call(relay) === RELAY_SOURCE ? relay : undefined;
}

/** The parts of engine.io's Server the release reaches into (engine.io 6). */
interface EngineInternals {
  use(middleware: (req: http.IncomingMessage, res: unknown, next: (err?: Error) => void) => void): void;
  on(event: "connection", fn: (conn: { request: unknown }) => void): unknown;
  /** engine.io's `ws` server for upgrades (absent when WebSocket is not among the transports). */
  ws?: { on(event: "headers", fn: (headers: string[], req: http.IncomingMessage) => void): unknown };
  clients: Record<string, { request: unknown } | undefined>;
}

/**
 * Engine.IO keeps each connection's HTTP request object for the connection's whole life, only for
 * Socket.IO to build each namespace's `socket.handshake` from it. The IncomingMessage holds its
 * stream state, raw headers and parser leftovers (Socket.IO's performance guide: about 4 KB of
 * heap per connection). It is replaced by a plain copy of what handshakes and apps read as soon
 * as the Engine.IO connection opens; `socket.request` returns that copy.
 *
 * A WebSocket upgrade keeps its request alive a second way: engine.io wraps it in a
 * `WebSocketResponse` (the `res` engine middlewares get) whose `close` listener on the TCP socket
 * lives as long as the connection, and the response holds `req`. Once the WebSocket handshake is
 * answered (ws's `headers` event: every engine middleware has run and engine.io has taken the
 * response headers off the request), either nothing listens for the response's `close` (no
 * middleware asked for it): the relaying listener is removed from the TCP socket and the response
 * is freed with the request (about 450 bytes more); or a middleware listens: the response's `req`
 * is pointed at the plain copy, so the `close` event still reaches it and `res.req` still has the
 * headers, URL and address. (The middleware this adds would make engine.io refuse WebTransport
 * sessions; sockfleet's workers only take TCP connections handed over by the primary.)
 */
export function slimRequests(io: Server): void {
  const engine = io.engine as unknown as EngineInternals;
  /** Upgrade requests in flight and their WebSocketResponse; entries go with the request. */
  const responses = new WeakMap<http.IncomingMessage, { res: UpgradeResponse; relay: Listener | undefined }>();
  /** The copy made at the WebSocket handshake, reused as the connection's request (one copy, not two). */
  const copies = new WeakMap<http.IncomingMessage, SlimRequest>();
  engine.use((req, res, next) => {
    if (!(res instanceof http.ServerResponse)) responses.set(req, { res: res as UpgradeResponse, relay: relayListener(req.socket) });
    next();
  });
  engine.ws?.on("headers", (_headers, req) => {
    const upgrade = responses.get(req);
    if (!upgrade) return;
    responses.delete(req);
    const { res, relay } = upgrade;
    // Nobody listens for the response's close: stop relaying it, and the response goes too.
    if (relay && res.listenerCount("close") === 0) {
      req.socket.removeListener("close", relay);
      return;
    }
    const sid = (req as { _query?: Record<string, string> })._query?.sid;
    // An upgrade from polling: the session already has its copy (of the polling handshake).
    const session = sid === undefined ? undefined : engine.clients[sid]?.request;
    if (session !== undefined && !(session instanceof http.IncomingMessage)) {
      res.req = session;
      return;
    }
    const slim = slimRequest(req);
    copies.set(req, slim);
    res.req = slim;
  });
  engine.on("connection", (conn) => {
    const req = conn.request as http.IncomingMessage;
    conn.request = copies.get(req) ?? slimRequest(req);
  });
}
