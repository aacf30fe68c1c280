import type { Server, Socket } from "socket.io";
import type { ChatData, Member } from "./protocol";

/** The rooms a socket chose to be in (not its own id room). */
export function chosenRooms(socket: Socket): string[] {
  return [...socket.rooms].filter((room) => room !== socket.id);
}

export function memberOf(socket: { id: string; data: unknown }): Member {
  return { id: socket.id, name: (socket.data as ChatData | undefined)?.name ?? null };
}

/**
 * Tells a room's members, on every worker and host, that someone joined or left: the page keeps
 * its member list from the "members" answer and these. A broadcast like any other, so a member
 * whose connection drops gets the ones it missed when its session is recovered.
 */
export function announce(via: Broadcaster, room: string, change: { joined: Member } | { left: Member }): void {
  via.to(room).emit("presence", { room, ...change });
}

/** The server (to everyone in a room) or a socket (to everyone in it but that socket). */
interface Broadcaster {
  to(room: string): { emit(event: string, ...args: unknown[]): boolean };
}

/**
 * Every member of `room` across the fleet, through the adapter's fetchSockets (each worker
 * answers for its own sockets; `socket.data` carries what they were named and where they are).
 */
export async function members(io: Server, room: string): Promise<Array<Member & { host: string | null; worker: number | null }>> {
  const sockets = await io.in(room).fetchSockets();
  return sockets.map((socket) => {
    const data = socket.data as ChatData | undefined;
    return { ...memberOf(socket), host: data?.host ?? null, worker: data?.worker ?? null };
  });
}
