/** Which clients get the recovery offset as the extra last argument of broadcasts (`--recovery-offsets`). */
export type OffsetRule = "auto" | "opt-in" | "all";

/**
 * The handshake query of socket.io-client (engine.io-client 6, in browsers and in Node, polling or
 * WebSocket first): it sets `EIO` and then `transport`, after any query of the user's own, so the
 * two are adjacent in that order. python-socketio 5.7 sends `transport=...&EIO=4`. Captured
 * handshakes are listed in the README ("Which clients get offsets").
 */
const ENGINE_IO_CLIENT = /(?:^|&)EIO=4&transport=(?:polling|websocket|webtransport)(?:&|$)/;

/** The parts of a socket the rule reads. */
export interface HandshakeView {
  handshake: { auth: unknown };
  conn: { request: { url?: string } };
}

/**
 * Whether a client can take an offset as an extra last argument. A client that cannot would pass
 * it to its handlers (python-socketio calls a one-argument handler with two and loses the event),
 * so the default gives offsets only where they are known to be understood:
 * - `offsets: true` or `false` in the CONNECT auth decides, whatever the rule (a client in another
 *   language that keeps the last string argument and sends `{ pid, offset }` back opts in);
 * - "all" gives them to every client (stock socket.io), "opt-in" to no other;
 * - "auto" also to a client that reconnected with a session id (it knows recovery), and to
 *   socket.io-client, told by its handshake query. No header tells it apart (Node sends no
 *   User-Agent over WebSocket), so this is a heuristic: a client that mimics that query and does
 *   not understand offsets must opt out, or the host run with "opt-in".
 */
export function takesOffsets(socket: HandshakeView, rule: OffsetRule): boolean {
  const auth = (typeof socket.handshake.auth === "object" && socket.handshake.auth !== null ? socket.handshake.auth : {}) as { offsets?: unknown; pid?: unknown };
  if (typeof auth.offsets === "boolean") return auth.offsets;
  if (rule !== "auto") return rule === "all";
  if (typeof auth.pid === "string") return true;
  const url = socket.conn.request.url ?? "";
  const query = url.indexOf("?");
  return query >= 0 && ENGINE_IO_CLIENT.test(url.slice(query + 1));
}
