/**
 * Which rooms stay off the per-room channels (tiers/redis/host-routes.ts): those that may be a
 * socket's own id room.
 *
 * Every socket is in a room named by its id, joined as it connects: routed across hosts, each new
 * connection would cost its host a SUBSCRIBE, a catch-up request on the bus and an answer from
 * every other host, its worker holding its incoming traffic meanwhile. A broadcast to one socket
 * id instead goes on the bus (every host gets it; the primary of each host then sends it only to
 * the worker holding that socket, primary/room-routes.ts), as before room routing.
 *
 * The publisher must decide alone: a broadcast names its rooms, not which are socket ids, and
 * `io.to(id)` may name a socket of another host, which nothing on this host knows. Socket.IO
 * makes a socket's id from 15 random bytes in base64url (socket.io's contrib/base64id.js): exactly
 * 20 characters of [A-Za-z0-9_-]. So every host applies this same test on both sides: a room that
 * has that shape is never published on a room channel, and its join never subscribes one. A named
 * room of that shape goes on the bus too (correct, only not routed); an id of any other shape
 * (engine.io's for protocol-3 clients in a namespace, a custom one) is routed and subscribed like
 * a named room (correct, only costly), so the test errs only towards the bus or towards cost.
 */
const SOCKET_ID = /^[A-Za-z0-9_-]{20}$/;

export function maySocketId(room: string): boolean {
  return room.length === 20 && SOCKET_ID.test(room);
}
