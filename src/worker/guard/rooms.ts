import type { Socket } from "socket.io";
import type { LimitHits } from "../../observability/limits";

/** Thrown by `socket.join` past `--max-rooms-per-socket`; the join does not happen. */
export class RoomLimitError extends Error {
  constructor(readonly max: number) {
    super(`room limit reached: a socket may be in at most ${max} rooms`);
    this.name = "RoomLimitError";
  }
}

/**
 * Caps the rooms one socket may be in (its own id room included): `socket.join` past the cap
 * throws RoomLimitError before joining anything, so the app's handler sees it (and can answer
 * the client) instead of the socket growing without bound. Joins made through the adapter
 * (`io.in(...).socketsJoin`) are the server's own doing and are not capped.
 */
export function capRooms(socket: Socket, max: number, hooks: LimitHits): void {
  const join = socket.join.bind(socket);
  socket.join = (rooms) => {
    const current = socket.rooms;
    const wanted = Array.isArray(rooms) ? rooms : [rooms];
    let added = 0;
    for (const room of new Set(wanted)) if (!current.has(room)) added++;
    if (current.size + added > max) {
      hooks.hit("max-rooms-per-socket", { sid: socket.id, rooms: current.size, max }, "join refused: room limit");
      throw new RoomLimitError(max);
    }
    return join(rooms);
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
  const claims = new WeakMap<object, Set<string>>();
  return (socket: Socket, next: (err?: Error) => void): void => {
    // socket.nsp, not the namespace the middleware was added to: a dynamic namespace's children run copies of its middlewares.
    const name = socket.nsp.name;
    const client = socket.client as object;
    let names = claims.get(client);
    if (!names) claims.set(client, (names = new Set()));
    if (!names.has(name) && names.size >= max) {
      hooks.hit("max-namespaces-per-client", { socket: socket.id, nsp: name, namespaces: names.size, max }, "namespace connection refused: namespace limit");
      return next(new Error(NAMESPACE_LIMIT_MESSAGE));
    }
    names.add(name);
    const claimed = names;
    socket.once("disconnect", () => claimed.delete(name));
    next();
  };
}
