import path from "node:path";
import { JoinRefusedError } from "../../auth/join-guard";
import { RoomLimitError } from "../../worker/guard";
import type { Socket } from "socket.io";
import type { App } from "../types";
import { announce, chosenRooms, memberOf, members } from "./presence";
import { chatMessageError, nameError, roomError, roomMessageError, type ChatData, type ErrorAck } from "./protocol";

type Ack = (reply: unknown) => void;

/** Clients may omit the acknowledgement, or send something else in its place. */
function asAck(candidate: unknown): Ack | undefined {
  return typeof candidate === "function" ? (candidate as Ack) : undefined;
}

function reject(ack: Ack | undefined, error: string): void {
  ack?.({ error } satisfies ErrorAck);
}

/** The `name` claim of the socket's JWT (README "Security and limits"), if it has one. */
function claimedName(data: ChatData | undefined): string | undefined {
  const name = data?.user?.name;
  return typeof name === "string" && name.length > 0 ? name : undefined;
}

/** A plain-object payload gets the sender's name as `from` (over any `from` it brought); others pass as they are. */
function signed(payload: unknown, from: string): unknown {
  if (typeof payload !== "object" || payload === null) return payload;
  const proto = Object.getPrototypeOf(payload);
  if (proto !== Object.prototype && proto !== null) return payload; // arrays, binary
  return { ...payload, from };
}

type Handler = (this: Socket, ...args: unknown[]) => unknown;

/**
 * The reference chat app: the default app module, and the protocol the benchmarks speak.
 * Its handlers are made once and shared by every socket (`this` is the socket): a closure per
 * event per socket cost about 500 bytes per connection.
 */
const chat: App = (io, ctx) => {
  ctx.serveStatic(path.join(__dirname, "public"));

  const handlers: Record<string, Handler> = {
    "set name"(this: Socket, name: unknown, ack: unknown) {
      const data = this.data as ChatData;
      if (claimedName(data) !== undefined) return reject(asAck(ack), "your name comes from your token");
      const error = nameError(name);
      if (error) return reject(asAck(ack), error);
      data.name = name as string;
      // A rename is announced as joining again under the new name.
      for (const room of chosenRooms(this)) announce(io, room, { joined: memberOf(this) });
      asAck(ack)?.(true);
    },

    "chat message"(this: Socket, payload: unknown, ack: unknown) {
      const error = chatMessageError(payload);
      if (error) return reject(asAck(ack), error);
      const name = (this.data as ChatData).name;
      io.emit("chat message", name === undefined ? payload : signed(payload, name));
      asAck(ack)?.(true);
    },

    async join(this: Socket, room: unknown, ack: unknown) {
      const error = roomError(room);
      if (error) return reject(asAck(ack), error);
      const already = this.rooms.has(room as string);
      try {
        await this.join(room as string);
      } catch (err) {
        if (err instanceof JoinRefusedError) return reject(asAck(ack), "not allowed");
        // sockfleet refuses joins past --max-rooms-per-socket by throwing: tell the client.
        if (err instanceof RoomLimitError) return reject(asAck(ack), err.message);
        ctx.logger.error({ err, room }, "join failed");
        return reject(asAck(ack), "join failed");
      }
      if (!already) announce(io, room as string, { joined: memberOf(this) });
      asAck(ack)?.(true);
    },

    leave(this: Socket, room: unknown, ack: unknown) {
      const error = roomError(room);
      if (error) return reject(asAck(ack), error);
      const was = this.rooms.has(room as string) && room !== this.id;
      void this.leave(room as string);
      if (was) announce(io, room as string, { left: memberOf(this) });
      asAck(ack)?.(true);
    },

    async members(this: Socket, room: unknown, ack: unknown) {
      const reply = asAck(ack);
      if (!reply) return;
      const error = roomError(room);
      if (error) return reject(reply, error);
      // Only a member may list a room: join authorisers decide who can see who is in it.
      if (!this.rooms.has(room as string)) return reject(reply, "join the room first");
      try {
        reply(await members(io, room as string));
      } catch (err) {
        ctx.logger.warn({ err, room }, "members: not every worker answered");
        reject(reply, "members unavailable, try again");
      }
    },

    disconnecting(this: Socket) {
      for (const room of chosenRooms(this)) announce(this, room, { left: memberOf(this) });
    },

    "room message"(this: Socket, message: unknown, ack: unknown) {
      const error = roomMessageError(message);
      if (error) return reject(asAck(ack), error);
      const { room, text } = message as { room: string; text: string };
      const name = (this.data as ChatData).name;
      io.to(room).emit("room message", name === undefined ? { room, text } : { room, text, from: name });
      asAck(ack)?.(true);
    },

    whoami(ack: unknown) {
      asAck(ack)?.({ host: ctx.host, worker: ctx.worker, pid: ctx.pid });
    },
  } as Record<string, Handler>;
  const events = Object.entries(handlers);

  io.on("connection", (socket) => {
    const data = socket.data as ChatData;
    // With JWT authentication on, the token's `name` claim is the socket's name and cannot change.
    const claimed = claimedName(data);
    if (claimed !== undefined) data.name = claimed;
    // Where the socket is now (a recovered socket's data came from the worker it was on).
    data.host = ctx.host;
    data.worker = ctx.worker;
    // A recovered socket's rooms saw it leave when its connection dropped: it is back.
    if (socket.recovered) for (const room of chosenRooms(socket)) announce(io, room, { joined: memberOf(socket) });
    for (const [event, handler] of events) socket.on(event, handler as (...args: unknown[]) => void);
  });
};

export default chat;
