import WebSocket from "ws";
import { waitUntil } from "./wait";

/**
 * A hand-driven Socket.IO client over a raw WebSocket, for frames no well-behaved client sends:
 * the Engine.IO handshake and namespace connect done by hand, then any text or binary frame.
 */
export class RawSocketIo {
  readonly frames: (string | Buffer)[] = [];
  closed = false;
  closeCode: number | undefined;
  private pongs = true;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const frame = isBinary ? data : data.toString();
      if (frame === "2" && this.pongs) ws.send("3");
      this.frames.push(frame);
    });
    ws.on("close", (code) => {
      this.closed = true;
      this.closeCode = code;
    });
    ws.on("error", () => undefined);
  }

  /** Opens the WebSocket, completes the Engine.IO handshake and connects namespace "/" (or `nsp`, with `auth`). */
  static async connect(port: number, nsp = "/", ms = 10_000, auth?: object): Promise<RawSocketIo> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    const raw = new RawSocketIo(ws);
    open.add(raw);
    await waitUntil("the Engine.IO open packet", () => raw.frames.find((f) => typeof f === "string" && f.startsWith("0{")), ms, 5);
    raw.send((nsp === "/" ? "40" : `40${nsp},`) + (auth ? JSON.stringify(auth) : ""));
    const prefix = nsp === "/" ? "40{" : `40${nsp},{`;
    await waitUntil("the namespace connect", () => raw.frames.find((f) => typeof f === "string" && f.startsWith(prefix)), ms, 5);
    return raw;
  }

  /** Sends one Engine.IO message frame (a Socket.IO packet is "4" + the packet text). */
  send(frame: string | Buffer): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
  }

  /** Sends a Socket.IO event on "/" with the given JSON arguments text (without brackets). */
  emitRaw(event: string, argsJson: string): void {
    this.send(`42[${JSON.stringify(event)}${argsJson ? "," + argsJson : ""}]`);
  }

  /** Asks the chat app's (or a fixture's) "whoami" with an ack and returns the worker's pid. */
  async whoamiPid(ms = 5_000): Promise<number> {
    const id = 900 + this.frames.length;
    this.send(`42${id}["whoami"]`);
    const reply = await waitUntil("the whoami ack", () => this.frames.find((f) => typeof f === "string" && f.startsWith(`43${id}[`)), ms, 5);
    return (JSON.parse((reply as string).slice(2 + String(id).length)) as [{ pid: number }])[0].pid;
  }

  /** Text frames that are Socket.IO events named `event` (on "/"), parsed. */
  events(event: string): unknown[][] {
    const prefix = `42[${JSON.stringify(event)}`;
    return this.frames
      .filter((f): f is string => typeof f === "string" && f.startsWith(prefix))
      .map((f) => (JSON.parse(f.slice(2)) as unknown[]).slice(1));
  }

  /** Stops reading (the kernel buffers fill, then the server's) and stops answering pings. */
  stall(): void {
    this.pongs = false;
    (this.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  /** Stops reading everything but keeps sending a pong on a timer, as a "blind pong" client would. */
  blindPong(everyMs: number): NodeJS.Timeout {
    this.stall();
    const timer = setInterval(() => this.send("3"), everyMs);
    this.ws.once("close", () => clearInterval(timer));
    return timer;
  }

  close(): void {
    open.delete(this);
    this.ws.terminate();
  }

  waitClosed(ms: number): Promise<true> {
    return waitUntil("the server to close the raw client", () => this.closed || undefined, ms);
  }
}

const open = new Set<RawSocketIo>();

export function closeAllRaw(): void {
  for (const raw of [...open]) raw.close();
}
