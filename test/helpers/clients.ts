import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import { nextEvent } from "./wait";

export type Client = Socket;
export interface WhoAmI {
  host: string;
  worker: number;
  pid: number;
}

const open = new Set<Socket>();

/** Connects a real socket.io-client (polling first by default) and waits for "connect". */
export async function connect(
  url: string,
  options: Partial<ManagerOptions & SocketOptions> = {},
  ms = 10_000,
): Promise<Socket> {
  const socket = io(url, { forceNew: true, reconnectionDelay: 100, reconnectionDelayMax: 500, timeout: ms, ...options });
  open.add(socket);
  if (!socket.connected) {
    await Promise.race([
      nextEvent(socket, "connect", ms),
      nextEvent<[Error]>(socket, "connect_error", ms).then(([err]) => {
        throw new Error(`connect to ${url} failed: ${err.message}`);
      }),
    ]);
  }
  return socket;
}

export function connectMany(url: string, count: number, options: Partial<ManagerOptions & SocketOptions> = {}): Promise<Socket[]> {
  return Promise.all(Array.from({ length: count }, () => connect(url, options)));
}

/** Emits with an acknowledgement and resolves with its reply, or rejects after `ms`. */
export async function request<T = unknown>(socket: Socket, event: string, ...args: unknown[]): Promise<T> {
  return (await socket.timeout(5_000).emitWithAck(event, ...args)) as T;
}

export function whoami(socket: Socket): Promise<WhoAmI> {
  return request<WhoAmI>(socket, "whoami");
}

export function closeClients(sockets: Iterable<Socket>): void {
  for (const socket of sockets) {
    socket.disconnect();
    open.delete(socket);
  }
}

export function closeAllClients(): void {
  closeClients([...open]);
}

/**
 * Makes a client reconnect to the URL `pick` returns at each attempt, as a load balancer in front
 * of several hosts would send it (socket.io-client builds each attempt's transport from the
 * manager's uri).
 */
export function reconnectTo(socket: Socket, pick: () => string): void {
  socket.io.on("reconnect_attempt", () => {
    (socket.io as unknown as { uri: string }).uri = pick();
  });
}
