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

/**
 * Engine.IO keeps each connection's HTTP request object for the connection's whole life, only for
 * Socket.IO to build each namespace's `socket.handshake` from it. The IncomingMessage holds its
 * stream state, raw headers and parser leftovers (Socket.IO's performance guide: about 4 KB of
 * heap per connection). It is replaced by a plain copy of what handshakes and apps read as soon
 * as the Engine.IO connection opens; `socket.request` returns that copy.
 */
export function slimRequests(io: Server): void {
  io.engine.on("connection", (conn: { request: unknown }) => {
    conn.request = slimRequest(conn.request as http.IncomingMessage);
  });
}
