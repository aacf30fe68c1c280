import net from "node:net";
import WebSocket from "ws";

/** What a raw connection got: the status line of an answer, or a close without any answer. */
export type Outcome = { status: number } | { closed: true };

/** Opens a TCP connection from `localAddress` (a 127.0.0.x) to the host and waits until it is connected. */
export function rawConnect(port: number, localAddress: string, ms = 5_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connect from ${localAddress} timed out after ${ms} ms`));
    }, ms);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("error", reject);
      socket.on("error", () => undefined);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Resolves with the first answer on `socket`, or `closed` when it closes without one; rejects after `ms`. */
export function outcome(socket: net.Socket, ms = 5_000): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    let text = "";
    const timer = setTimeout(() => reject(new Error(`no answer and no close within ${ms} ms`)), ms);
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve({ status: Number(match[1]) });
      }
    });
    socket.once("close", () => {
      clearTimeout(timer);
      resolve({ closed: true });
    });
  });
}

/** Resolves when `socket` closes, with the time it took from `since`. */
export function closedAfter(socket: net.Socket, since: number, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return resolve(Date.now() - since);
    const timer = setTimeout(() => reject(new Error(`the connection was still open after ${ms} ms`)), ms);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - since);
    });
  });
}

/** A raw Engine.IO WebSocket from `localAddress` with extra request headers: open, an HTTP refusal, or closed. */
export function engineWebSocket(port: number, localAddress: string, headers: Record<string, string> = {}, ms = 5_000): Promise<{ ws: WebSocket } | Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { localAddress, headers, handshakeTimeout: ms });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`WebSocket from ${localAddress} neither opened nor failed within ${ms} ms`));
    }, ms + 500);
    const settle = (value: { ws: WebSocket } | Outcome): void => {
      clearTimeout(timer);
      resolve(value);
    };
    ws.once("open", () => settle({ ws }));
    ws.once("unexpected-response", (_req, res) => {
      settle({ status: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.once("error", () => settle({ closed: true }));
    ws.on("error", () => undefined);
  });
}

/** Opens `count` connections from `localAddress` at most `parallel` at a time; each gets `first` written if given. */
export async function openMany(port: number, localAddress: string, count: number, first?: string, parallel = 200): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i += parallel) {
    const batch = await Promise.all(Array.from({ length: Math.min(parallel, count - i) }, () => rawConnect(port, localAddress)));
    for (const socket of batch) if (first !== undefined) socket.write(first);
    sockets.push(...batch);
  }
  return sockets;
}

export const POLLING_HANDSHAKE = "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
