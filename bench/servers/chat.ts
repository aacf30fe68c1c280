/**
 * The chat protocol every server under test runs (the same as sockfleet's reference app):
 * - "chat message" (payload)         -> io.emit("chat message", payload)
 * - "join" (room, ack) / "leave"     -> join / leave the room, ack(true)
 * - "room message" ({ room, text })  -> io.to(room).emit("room message", { room, text })
 * - "whoami" (ack)                   -> ack({ host, worker, pid })
 */
import os from "node:os";
import type { Server, Socket } from "socket.io";

export interface Identity {
  host: string;
  worker: number;
}

type Ack = (value: unknown) => void;

function isAck(value: unknown): value is Ack {
  return typeof value === "function";
}

export function attachChat(io: Server, identity: Identity): void {
  const who = { host: identity.host, worker: identity.worker, pid: process.pid };
  io.on("connection", (socket: Socket) => {
    socket.on("chat message", (payload: unknown) => {
      io.emit("chat message", payload);
    });
    socket.on("join", (room: unknown, ack: unknown) => {
      if (typeof room === "string") void socket.join(room);
      if (isAck(ack)) ack(typeof room === "string");
    });
    socket.on("leave", (room: unknown, ack: unknown) => {
      if (typeof room === "string") void socket.leave(room);
      if (isAck(ack)) ack(typeof room === "string");
    });
    socket.on("room message", (msg: unknown) => {
      if (typeof msg !== "object" || msg === null) return;
      const { room, text } = msg as { room?: unknown; text?: unknown };
      if (typeof room !== "string") return;
      io.to(room).emit("room message", { room, text });
    });
    socket.on("whoami", (ack: unknown) => {
      if (isAck(ack)) ack(who);
    });
  });
}

export function hostName(): string {
  return process.env["BENCH_HOST_NAME"] ?? os.hostname();
}

/** The line the harness waits for; the same shape as sockfleet's CLI `ready` log line. */
export function printReady(port: number, workers: number): void {
  process.stdout.write(`${JSON.stringify({ level: 30, msg: "ready", port, workers, pid: process.pid })}\n`);
}

export interface ServerArgs {
  port: number;
  host: string;
  workers: number;
  redis: string | undefined;
}

/** `--port P --host H --workers N --redis URL`, the same flags as the sockfleet CLI. */
export function parseServerArgs(argv: readonly string[]): ServerArgs {
  const get = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    port: Number(get("--port") ?? 0),
    host: get("--host") ?? "127.0.0.1",
    workers: Number(get("--workers") ?? os.availableParallelism()),
    redis: get("--redis"),
  };
}

/** A server process exits when the harness that started it goes away. */
export function exitWithParent(): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000);
  timer.unref();
}
