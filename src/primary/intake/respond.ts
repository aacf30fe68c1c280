import type net from "node:net";

/** How long a refused client has to read its answer before its connection is destroyed. */
const LINGER_MS = 1_000;

const REASONS: Record<number, string> = {
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

/**
 * Answers `status` with `Connection: close` and closes the connection. The socket keeps reading
 * (and discarding) until the client closes or LINGER_MS pass, so the answer is not lost to a reset
 * that closing with unread input would send, and a client that never closes is destroyed anyway.
 */
export function refuse(socket: net.Socket, status: 431 | 503): void {
  if (socket.destroyed) return;
  socket.removeAllListeners("data");
  socket.on("data", () => undefined);
  socket.resume();
  socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
