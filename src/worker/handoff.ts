import type http from "node:http";
import net from "node:net";
import { isSockfleetMessage, sendToPrimary } from "../ipc/messages";

/**
 * Receives the TCP connections the primary's balancer hands over, replays the bytes the primary
 * already read, and tracks them so shutdown can wait for them to close.
 */
export class ConnectionIntake {
  readonly sockets = new Set<net.Socket>();
  private accepting = true;

  constructor(private readonly server: http.Server) {
    process.on("message", this.onMessage);
  }

  private readonly onMessage = (message: unknown, handle: unknown): void => {
    if (!isSockfleetMessage(message) || message.sf !== "connection") return;
    if (!(handle instanceof net.Socket)) return;
    if (!this.accepting) {
      handle.destroy();
      return;
    }
    sendToPrimary({ sf: "accepted", handoff: message.handoff });
    this.sockets.add(handle);
    handle.once("close", () => this.sockets.delete(handle));
    this.server.emit("connection", handle);
    const head = message.head;
    handle.emit("data", Buffer.from(head.buffer, head.byteOffset, head.byteLength));
    handle.resume();
  };

  /** Refuses further hand-overs and resolves when every connection closed, or after `ms`. */
  async drain(ms: number): Promise<void> {
    this.accepting = false;
    const deadline = Date.now() + ms;
    while (this.sockets.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const socket of this.sockets) socket.destroy();
  }
}
