import path from "node:path";
import { JoinRefusedError } from "../../auth/join-guard";
import { RoomLimitError } from "../../worker/guard";
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

/** The `name` claim of the socket's JWT (README "Security and limits"), if it has one. */
function claimedName(data: unknown): string | undefined {
  const name = (data as { user?: { name?: unknown } } | undefined)?.user?.name;
  return typeof name === "string" && name.length > 0 ? name : undefined;
}

/** A plain-object payload gets the sender's claimed name as `from` (over any `from` it brought); others pass as they are. */
function signed(payload: unknown, from: string): unknown {
  if (typeof payload !== "object" || payload === null) return payload;
  const proto = Object.getPrototypeOf(payload);
  if (proto !== Object.prototype && proto !== null) return payload; // arrays, binary
  return { ...payload, from };
}

/** The reference chat app: the default app module, and the protocol the benchmarks speak. */
const chat: App = (io, ctx) => {
  ctx.serveStatic(path.join(__dirname, "public"));

  io.on("connection", (socket) => {
    // With JWT authentication on, the token's `name` claim signs what the socket says.
    const from = claimedName(socket.data);

    socket.on("chat message", (payload: unknown) => {
      io.emit("chat message", from === undefined ? payload : signed(payload, from));
    });

    socket.on("join", async (room: unknown, ack: unknown) => {
      const error = roomError(room);
      if (error) return reject(asAck(ack), error);
      try {
        await socket.join(room as string);
      } catch (err) {
        if (err instanceof JoinRefusedError) return reject(asAck(ack), "not allowed");
        // sockfleet refuses joins past --max-rooms-per-socket by throwing: tell the client.
        if (err instanceof RoomLimitError) return reject(asAck(ack), err.message);
        ctx.logger.error({ err, room }, "join failed");
        return reject(asAck(ack), "join failed");
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
      io.to(room).emit("room message", from === undefined ? { room, text } : { room, text, from });
      asAck(ack)?.(true);
    });

    socket.on("whoami", (ack: unknown) => {
      asAck(ack)?.({ host: ctx.host, worker: ctx.worker, pid: ctx.pid });
    });
  });
};

export default chat;
