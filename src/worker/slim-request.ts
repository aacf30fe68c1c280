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
 * response headers off the request), the response's `req` is pointed at the plain copy: the
 * `close` event still reaches middlewares, and `res.req` still has the headers, URL and address.
 */
export function slimRequests(io: Server): void {
  const engine = io.engine as unknown as EngineInternals;
  /** Upgrade requests in flight and their WebSocketResponse; entries go with the request. */
  const responses = new WeakMap<http.IncomingMessage, { req: unknown }>();
  /** The copy made at the WebSocket handshake, reused as the connection's request (one copy, not two). */
  const copies = new WeakMap<http.IncomingMessage, SlimRequest>();
  engine.use((req, res, next) => {
    if (!(res instanceof http.ServerResponse)) responses.set(req, res as { req: unknown });
    next();
  });
  engine.ws?.on("headers", (_headers, req) => {
    const res = responses.get(req);
    if (!res) return;
    responses.delete(req);
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
