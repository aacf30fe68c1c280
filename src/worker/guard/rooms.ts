import { Socket, type Server } from "socket.io";
import type { LimitHits } from "../../observability/limits";

/** Thrown by `socket.join` past `--max-rooms-per-socket`; the join does not happen. */
export class RoomLimitError extends Error {
  constructor(readonly max: number) {
    super(`room limit reached: a socket may be in at most ${max} rooms`);
    this.name = "RoomLimitError";
  }
}

/** The Servers whose sockets' joins are capped, and their cap. */
const caps = new WeakMap<object, { max: number; hooks: LimitHits }>();
let patched = false;

/**
 * Caps the rooms one socket of `io` may be in (its own id room included): `socket.join` past the
 * cap throws RoomLimitError before joining anything, so the app's handler sees it (and can answer
 * the client) instead of the socket growing without bound. Joins made through the adapter
 * (`io.in(...).socketsJoin`) are the server's own doing and are not capped.
 *
 * The check sits in Socket.IO's `Socket.prototype.join` (patched once per process, inert for
 * servers without a cap), not in a bound copy per socket: that cost about 150 bytes per connection.
 */
export function capRooms(io: Server, max: number, hooks: LimitHits): void {
  caps.set(io, { max, hooks });
  if (patched) return;
  patched = true;
  const proto = Socket.prototype as unknown as { join(this: Socket, rooms: string | string[]): unknown };
  const join = proto.join;
  proto.join = function (this: Socket, rooms: string | string[]) {
    const cap = caps.get(this.nsp.server);
    if (cap) {
      const current = this.rooms;
      const wanted = Array.isArray(rooms) ? rooms : [rooms];
      let added = 0;
      for (const room of new Set(wanted)) if (!current.has(room)) added++;
      if (current.size + added > cap.max) {
        cap.hooks.hit("max-rooms-per-socket", { sid: this.id, rooms: current.size, max: cap.max }, "join refused: room limit");
        throw new RoomLimitError(cap.max);
      }
    }
    return join.call(this, rooms);
  };
}

/** Message of the connect_error a client gets for a namespace past `--max-namespaces-per-client`. */
export const NAMESPACE_LIMIT_MESSAGE = "namespace limit reached";

/**
 * A namespace middleware refusing a client's connection to more than `max` namespaces at once.
 * Names are claimed when the middleware lets a connection through and released when that socket
 * disconnects: socket.io records a client's namespaces only after every middleware has run, so
 * CONNECT packets arriving together would all see the old count.
 */
export function namespaceCap(max: number, hooks: LimitHits) {
  // A client's claimed names: one name as a string (nearly every client), a Set past one.
  const claims = new WeakMap<object, string | Set<string>>();
  // One listener function for every socket (`this` is the socket), not a closure per socket.
  function release(this: Socket): void {
    const names = claims.get(this.client);
    if (names === this.nsp.name) claims.delete(this.client);
    else if (typeof names === "object") names.delete(this.nsp.name);
  }
  return (socket: Socket, next: (err?: Error) => void): void => {
    // socket.nsp, not the namespace the middleware was added to: a dynamic namespace's children run copies of its middlewares.
    const name = socket.nsp.name;
    const client = socket.client as object;
    const names = claims.get(client);
    const count = names === undefined ? 0 : typeof names === "string" ? 1 : names.size;
    const has = names === name || (typeof names === "object" && names.has(name));
    if (!has && count >= max) {
      hooks.hit("max-namespaces-per-client", { socket: socket.id, nsp: name, namespaces: count, max }, "namespace connection refused: namespace limit");
      return next(new Error(NAMESPACE_LIMIT_MESSAGE));
    }
    if (names === undefined) claims.set(client, name);
    else if (typeof names === "string" && !has) claims.set(client, new Set([names, name]));
    else if (typeof names === "object") names.add(name);
    // "disconnect" comes once per socket: a plain listener, without once()'s wrapper per socket.
    socket.on("disconnect", release);
    next();
  };
}
