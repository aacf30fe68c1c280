import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Backlog } from "../ipc/backlog";
import { encodeFrame, FrameDecoder } from "../ipc/frames";
import type { Logger } from "../observability/logger";

/** What a data link may hold unsent, and what to do about a worker that falls that far behind. */
export interface ChannelBound {
  maxBytes: number;
  /** The link to `worker` was closed with `unsent` bytes waiting: the worker must be replaced. */
  onOverflow(worker: number, unsent: number): void;
}

/**
 * The data channel of the cores tier: a Unix socket per worker carrying adapter traffic and
 * recovery messages. Node's IPC channel stays for control and connection hand-overs only: while
 * a socket handle travels over IPC, Node holds back every later message to that worker until the
 * worker acknowledges the handle, so during a reconnect storm broadcasts sharing that channel
 * would stall behind the hand-overs.
 */
export class DataHub {
  readonly path = path.join(os.tmpdir(), `sockfleet-${process.pid}-${randomBytes(4).toString("hex")}.sock`);
  private readonly server: net.Server;
  private readonly links = new Map<number, { socket: net.Socket; backlog: Backlog; sent: number }>();

  constructor(
    /** `body`: the frame's bytes, valid during the call only. */
    private readonly onMessage: (worker: number, message: unknown, body: Buffer) => void,
    private readonly logger: Logger,
    private readonly bound: ChannelBound,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.path, () => {
        fs.chmodSync(this.path, 0o600);
        resolve();
      });
    });
  }

  /**
   * Queues an encoded frame for `worker` (the same buffer may go to several). A worker with more than `maxBytes` unsent already (behind the
   * frame being written, see {@link Backlog}) is too far behind to deliver in order: dropping what it cannot take would silently break exactly-once
   * delivery, so its link is closed instead and the worker replaced (its clients reconnect and
   * recover their sessions elsewhere). One frame may exceed the bound on its own.
   */
  sendFrame(worker: number, frame: Buffer): void {
    const link = this.links.get(worker);
    if (!link || link.socket.destroyed) return;
    if (link.backlog.behind() > this.bound.maxBytes) {
      const unsent = link.socket.writableLength;
      this.links.delete(worker);
      link.socket.destroy();
      this.bound.onOverflow(worker, unsent);
      return;
    }
    link.socket.write(frame, link.backlog.add(frame.length));
    link.sent++;
  }

  /** Encodes `message` and queues it for `worker` (see {@link sendFrame}). */
  send(worker: number, message: unknown): void {
    const frame = this.encode(message, worker);
    if (frame) this.sendFrame(worker, frame);
  }

  /**
   * One frame for every worker a message goes to: encode once, then {@link sendFrame} the same
   * bytes to each. Undefined when it cannot be encoded (logged).
   */
  encode(message: unknown, worker?: number): Buffer | undefined {
    try {
      return encodeFrame(message);
    } catch (err) {
      // The worker that published it could serialize it, so this is rare; lose this one message
      // rather than the primary.
      this.logger.error({ err, worker }, "message cannot be sent on a data link; dropped");
      return undefined;
    }
  }

  /** Frames written to `worker` on its current link (room routing places catch-ups by it). */
  sent(worker: number): number {
    return this.links.get(worker)?.sent ?? 0;
  }

  /** Bytes written to each worker's link that the kernel has not taken yet (the worker is behind). */
  queued(): Array<[worker: number, bytes: number]> {
    return [...this.links].map(([worker, link]) => [worker, link.socket.writableLength]);
  }

  /** Workers with a live data link. */
  workers(): number[] {
    return [...this.links.keys()];
  }

  close(): void {
    this.server.close();
    for (const link of this.links.values()) link.socket.destroy();
    fs.rmSync(this.path, { force: true });
  }

  private accept(socket: net.Socket): void {
    let worker: number | undefined;
    const decoder = new FrameDecoder((err, bytes) => this.logger.error({ err, worker, bytes }, "undecodable frame on a data link; skipped"));
    socket.on("data", (chunk: Buffer) => {
      for (const { message, body } of decoder.pushFrames(chunk)) {
        if (worker === undefined) {
          // The first frame names the worker.
          worker = (message as { hello?: number }).hello;
          if (typeof worker !== "number") return void socket.destroy();
          this.links.set(worker, { socket, backlog: new Backlog(), sent: 0 });
          continue;
        }
        this.onMessage(worker, message, body);
      }
    });
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      if (worker !== undefined && this.links.get(worker)?.socket === socket) this.links.delete(worker);
    });
  }
}
