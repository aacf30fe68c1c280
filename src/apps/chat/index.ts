import path from "node:path";
import type { App } from "../types";
import { roomError, roomMessageError, type ErrorAck } from "./protocol";

type Ack = (reply: unknown) => void;

/** Clients may omit the acknowledgement, or send something else in its place. */
function asAck(candidate: unknown): Ack | undefined {
  return typeof candidate === "function" ? (candidate as Ack) : undefined;
}

function reject(ack: Ack | undefined, error: string): void {
  ack?.({ error } satisfies ErrorAck);
}

/** The reference chat app: the default app module, and the protocol the benchmarks speak. */
const chat: App = (io, ctx) => {
  ctx.serveStatic(path.join(__dirname, "public"));

  io.on("connection", (socket) => {
    socket.on("chat message", (payload: unknown) => {
      io.emit("chat message", payload);
    });

    socket.on("join", (room: unknown, ack: unknown) => {
      const error = roomError(room);
      if (error) return reject(asAck(ack), error);
      try {
        void socket.join(room as string);
      } catch (err) {
        // sockfleet refuses joins past --max-rooms-per-socket by throwing: tell the client.
        return reject(asAck(ack), (err as Error).message);
      }
      asAck(ack)?.(true);
    });

    socket.on("leave", (room: unknown, ack: unknown) => {
      const error = roomError(room);
      if (error) return reject(asAck(ack), error);
      void socket.leave(room as string);
      asAck(ack)?.(true);
    });

    socket.on("room message", (message: unknown, ack: unknown) => {
      const error = roomMessageError(message);
      if (error) return reject(asAck(ack), error);
      const { room, text } = message as { room: string; text: string };
      io.to(room).emit("room message", { room, text });
      asAck(ack)?.(true);
    });

    socket.on("whoami", (ack: unknown) => {
      asAck(ack)?.({ host: ctx.host, worker: ctx.worker, pid: ctx.pid });
    });
  });
};

export default chat;
