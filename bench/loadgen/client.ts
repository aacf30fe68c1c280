/**
 * One WebSocket-only Socket.IO v4 client over the `ws` package: open, CONNECT to "/", answer pings,
 * emit events (with or without ack). Events received are handed over raw (a Buffer) to `onEvent`,
 * so the caller decides how little to decode.
 */
import WebSocket from "ws";
import {
  CONNECT_MAIN,
  EIO,
  PONG,
  SIO,
  encodeEvent,
  parseAck,
  parseConnect,
  parseOpen,
  websocketUrl,
} from "./protocol.js";

export type ClientState = "connecting" | "connected" | "closed";

export interface ClientOptions {
  host: string;
  port: number;
  /** Source address (127.0.0.x) to pass the ephemeral-port limit of one address. */
  localAddress?: string | undefined;
  /** Time allowed from the TCP connect to the reply to CONNECT. */
  connectTimeoutMs: number;
  /** Raw socket.io EVENT packets (`42...`). */
  onEvent?: ((data: Buffer) => void) | undefined;
  /** Called once when the connection closes after having connected. */
  onClose?: ((reason: string) => void) | undefined;
}

type AckCallback = (args: unknown[]) => void;

export class SioWsClient {
  state: ClientState = "connecting";
  /** engine.io session id, from the OPEN packet. */
  engineSid = "";
  /** socket.io session id, from the CONNECT reply. */
  sid = "";
  private readonly ws: WebSocket;
  private readonly acks = new Map<number, AckCallback>();
  private nextAckId = 0;
  private readonly ready: Promise<void>;

  constructor(private readonly opts: ClientOptions) {
    this.ws = new WebSocket(websocketUrl(opts.host, opts.port), {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: opts.connectTimeoutMs,
      ...(opts.localAddress === undefined ? {} : { localAddress: opts.localAddress }),
    });
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        fail(new Error(`connect timeout after ${opts.connectTimeoutMs} ms (${this.engineSid ? "opened, no CONNECT reply" : "no OPEN packet"})`));
      }, opts.connectTimeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        if (this.state === "connecting") {
          this.state = "closed";
          this.ws.terminate();
          reject(err);
        }
      };
      this.ws.on("error", (err) => fail(err));
      this.ws.on("close", (code) => {
        const wasConnected = this.state === "connected";
        fail(new Error(`closed before CONNECT (code ${code})`));
        this.state = "closed";
        for (const cb of this.acks.values()) cb([new Error("closed")]);
        this.acks.clear();
        if (wasConnected) this.opts.onClose?.(`close ${code}`);
      });
      this.ws.on("message", (data: Buffer) => {
        const t = data[0];
        if (t === EIO.MESSAGE) {
          const s = data[1];
          if (s === SIO.EVENT) {
            this.opts.onEvent?.(data);
          } else if (s === SIO.ACK) {
            const { id, args } = parseAck(data.toString());
            const cb = this.acks.get(id);
            if (cb) {
              this.acks.delete(id);
              cb(args);
            }
          } else if (s === SIO.CONNECT) {
            try {
              this.sid = parseConnect(data.toString());
            } catch (err) {
              fail(err as Error);
              return;
            }
            clearTimeout(timer);
            if (this.state === "connecting") {
              this.state = "connected";
              resolve();
            }
          } else if (s === SIO.CONNECT_ERROR) {
            fail(new Error(`CONNECT_ERROR ${data.toString().slice(2)}`));
          } else if (s === SIO.DISCONNECT) {
            this.ws.close();
          }
        } else if (t === EIO.PING) {
          this.ws.send(PONG);
        } else if (t === EIO.OPEN) {
          try {
            this.engineSid = parseOpen(data.toString()).sid;
          } catch (err) {
            fail(err as Error);
            return;
          }
          this.ws.send(CONNECT_MAIN);
        } else if (t === EIO.CLOSE) {
          this.ws.close();
        }
      });
    });
  }

  /** Resolves once the server has answered CONNECT; rejects on timeout, error or early close. */
  connected(): Promise<void> {
    return this.ready;
  }

  /** Sends a pre-encoded packet (e.g. from `encodeEvent`). */
  sendRaw(packet: string): void {
    if (this.state === "connected") this.ws.send(packet);
  }

  emit(name: string, ...args: unknown[]): void {
    this.sendRaw(encodeEvent(name, args));
  }

  /** Emits with an ack request; resolves with the ack arguments or rejects after `timeoutMs`. */
  emitWithAck(name: string, args: readonly unknown[], timeoutMs: number): Promise<unknown[]> {
    if (this.state !== "connected") return Promise.reject(new Error("not connected"));
    const id = this.nextAckId++;
    return new Promise<unknown[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.acks.delete(id);
        reject(new Error(`ack timeout for ${name}`));
      }, timeoutMs);
      this.acks.set(id, (ackArgs) => {
        clearTimeout(timer);
        const first = ackArgs[0];
        if (first instanceof Error) reject(first);
        else resolve(ackArgs);
      });
      this.ws.send(encodeEvent(name, args, id));
    });
  }

  /** Bytes waiting in the socket (back-pressure seen from the client). */
  bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.ws.close();
  }

  /** Closes without the closing handshake (used when tearing down many at once). */
  terminate(): void {
    this.state = "closed";
    this.ws.terminate();
  }
}
