/**
 * The slice of the engine.io v4 / socket.io v5 wire protocol that the load generator speaks.
 *
 * Only WebSocket transport, only the main namespace "/", only text packets. An engine.io packet is
 * one WebSocket message whose first character is its type; a socket.io packet rides inside an
 * engine.io MESSAGE ("4") and starts with its own type character, then an optional ack id, then
 * a JSON array `[eventName, ...args]`.
 */

/** engine.io packet types, as the first byte of a WebSocket message. */
export const EIO = {
  OPEN: 0x30, // "0"
  CLOSE: 0x31, // "1"
  PING: 0x32, // "2"
  PONG: 0x33, // "3"
  MESSAGE: 0x34, // "4"
} as const;

/** socket.io packet types, as the second byte of an engine.io MESSAGE. */
export const SIO = {
  CONNECT: 0x30, // "0"
  DISCONNECT: 0x31, // "1"
  EVENT: 0x32, // "2"
  ACK: 0x33, // "3"
  CONNECT_ERROR: 0x34, // "4"
} as const;

export const PONG = "3";
export const CONNECT_MAIN = "40";

export function websocketUrl(host: string, port: number): string {
  return `ws://${host}:${port}/socket.io/?EIO=4&transport=websocket`;
}

/** `42["name",...args]`, or `42<ackId>[...]` when an ack is requested. */
export function encodeEvent(name: string, args: readonly unknown[], ackId?: number): string {
  const id = ackId === undefined ? "" : String(ackId);
  return `42${id}${JSON.stringify([name, ...args])}`;
}

export interface OpenPacket {
  sid: string;
  pingInterval: number;
  pingTimeout: number;
  maxPayload: number;
}

export function parseOpen(text: string): OpenPacket {
  const raw: unknown = JSON.parse(text.slice(1));
  if (typeof raw !== "object" || raw === null) throw new Error("open packet is not an object");
  const o = raw as Record<string, unknown>;
  if (typeof o["sid"] !== "string") throw new Error("open packet has no sid");
  return {
    sid: o["sid"],
    pingInterval: typeof o["pingInterval"] === "number" ? o["pingInterval"] : 0,
    pingTimeout: typeof o["pingTimeout"] === "number" ? o["pingTimeout"] : 0,
    maxPayload: typeof o["maxPayload"] === "number" ? o["maxPayload"] : 0,
  };
}

/** Parses `40{"sid":"..."}` (the reply to CONNECT) and returns the socket.io sid. */
export function parseConnect(text: string): string {
  const raw: unknown = JSON.parse(text.slice(2));
  if (typeof raw !== "object" || raw === null) throw new Error("connect packet is not an object");
  const sid = (raw as Record<string, unknown>)["sid"];
  if (typeof sid !== "string") throw new Error("connect packet has no sid");
  return sid;
}

/** Parses `43<id>[...args]` into its ack id and arguments. */
export function parseAck(text: string): { id: number; args: unknown[] } {
  let i = 2;
  while (i < text.length && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39) i++;
  if (i === 2) throw new Error("ack packet has no id");
  const id = Number(text.slice(2, i));
  const args: unknown = JSON.parse(text.slice(i));
  if (!Array.isArray(args)) throw new Error("ack packet arguments are not an array");
  return { id, args };
}

/**
 * Reads the unsigned decimal integer that follows `marker` in `buf`, without decoding the message.
 * Returns -1 when the marker is missing. This is the hot path of every delivery.
 */
export function readIntAfter(buf: Buffer, marker: Buffer, from = 0): number {
  const at = buf.indexOf(marker, from);
  if (at < 0) return -1;
  let i = at + marker.length;
  let n = 0;
  let digits = 0;
  for (; i < buf.length; i++) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39) break;
    n = n * 10 + (c - 0x30);
    digits++;
  }
  return digits === 0 ? -1 : n;
}

/** Monotonic microseconds, shared by every process on the host (CLOCK_MONOTONIC). */
export function nowMicros(): number {
  const [s, ns] = process.hrtime();
  return s * 1e6 + Math.floor(ns / 1e3);
}
