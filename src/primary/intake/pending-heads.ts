import type net from "node:net";

const TERMINATOR = Buffer.from("\r\n\r\n");

/**
 * The bytes of one connection's first request head, gathered chunk by chunk. Only the newly
 * arrived bytes (and the three before them) are searched for the end of the head, so a head
 * trickled one byte per packet costs linear, not quadratic, work.
 */
export class HeadBuffer {
  private readonly chunks: Buffer[] = [];
  private tail: Buffer = Buffer.alloc(0);
  size = 0;
  /** Length of the head including its blank line, once complete. */
  headLength: number | undefined;

  /** Adds `chunk`; true once the head is complete. */
  push(chunk: Buffer): boolean {
    this.chunks.push(chunk);
    const window = this.tail.length === 0 ? chunk : Buffer.concat([this.tail, chunk]);
    const at = window.indexOf(TERMINATOR);
    if (at !== -1 && this.headLength === undefined) this.headLength = this.size - this.tail.length + at + TERMINATOR.length;
    this.size += chunk.length;
    this.tail = window.subarray(Math.max(0, window.length - (TERMINATOR.length - 1)));
    return this.headLength !== undefined;
  }

  /** Every byte read so far (the head and whatever followed it), to replay in the worker. */
  bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
  }
}

export type PendingDrop = "head-timeout" | "max-pending-heads";

/**
 * Connections waiting for their first request head, oldest first. Each has a total deadline from
 * its accept (--head-timeout), which trickled bytes do not extend; when more than `max` wait, the
 * oldest is dropped, so connections that never finish a head cannot keep new clients waiting.
 * Deadlines come in accept order, so one timer, armed for the oldest, serves them all.
 */
export class PendingHeads {
  private readonly waiting = new Map<net.Socket, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly max: number,
    private readonly timeoutMs: number,
    private readonly drop: (socket: net.Socket, reason: PendingDrop) => void,
  ) {}

  get size(): number {
    return this.waiting.size;
  }

  add(socket: net.Socket): void {
    this.waiting.set(socket, Date.now() + this.timeoutMs);
    while (this.waiting.size > this.max) {
      const oldest = this.waiting.keys().next().value as net.Socket;
      this.waiting.delete(oldest);
      this.drop(oldest, "max-pending-heads");
    }
    this.timer ??= this.arm();
  }

  /** The connection's head arrived, or it closed. */
  remove(socket: net.Socket): void {
    this.waiting.delete(socket);
  }

  private arm(): NodeJS.Timeout | undefined {
    const first = this.waiting.values().next();
    if (first.done) return undefined;
    const timer = setTimeout(() => this.expire(), Math.max(0, first.value - Date.now()));
    timer.unref();
    return timer;
  }

  private expire(): void {
    const now = Date.now();
    for (const [socket, deadline] of this.waiting) {
      if (deadline > now) break;
      this.waiting.delete(socket);
      this.drop(socket, "head-timeout");
    }
    this.timer = this.arm();
  }
}
