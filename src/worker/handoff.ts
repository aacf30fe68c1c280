import type http from "node:http";
import net from "node:net";
import { isSockfleetMessage, sendToPrimary } from "../ipc/messages";

/**
 * Receives the TCP connections the primary's balancer hands over, replays the bytes the primary
 * already read, and tracks them so shutdown can wait for them to close.
 */
export class ConnectionIntake {
  /** Connections handed over and still open, with their hand-over number. */
  readonly sockets = new Map<net.Socket, number>();
  private accepting = true;
  /** Hand-overs closed since the last "released" message; a mass disconnect costs one message, not thousands. */
  private closed: number[] = [];

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
    this.sockets.set(handle, message.handoff);
    handle.on("close", this.onClose);
    this.server.emit("connection", handle);
    handle.emit("data", Buffer.from(message.head, "base64"));
    handle.resume();
  };

  /**
   * One listener for every connection ("close" comes once per socket; `this` is the socket): a
   * closure and once()'s wrapper per connection cost about 200 bytes each.
   */
  private readonly onClose = ((intake: ConnectionIntake) =>
    function (this: net.Socket): void {
      const handoff = intake.sockets.get(this);
      if (handoff === undefined) return;
      intake.sockets.delete(this);
      intake.released(handoff);
    })(this);

  private released(handoff: number): void {
    if (this.closed.push(handoff) > 1) return;
    setImmediate(() => {
      const handoffs = this.closed;
      this.closed = [];
      sendToPrimary({ sf: "released", handoffs });
    });
  }

  /** Refuses further hand-overs and resolves when every connection closed, or after `ms`. */
  async drain(ms: number): Promise<void> {
    this.accepting = false;
    const deadline = Date.now() + ms;
    while (this.sockets.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    for (const socket of this.sockets.keys()) socket.destroy();
  }
}
