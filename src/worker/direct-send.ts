import { countDirectWrite, watchOf } from "./guard/slow-consumer";

/**
 * Fan-out fast path for WebSocket clients: a broadcast's Engine.IO frame, built once, written
 * straight to each recipient's `ws` socket when Engine.IO would have done nothing but write it.
 *
 * Engine.IO's own path per recipient allocates a packet, emits `packetCreate`, queues it, emits
 * `flush` and `drain` on the socket and on the server, and hands ws the frame as two buffers
 * (header, payload) under cork/uncork, which Node writes with `writev`. Here, when nothing is
 * queued and no one else listens to those events, the same bytes go out as one buffer in one
 * `write`, and Engine.IO's bookkeeping is kept exactly as its WebSocket transport keeps it: the
 * transport is not writable until the write completes, then emits `drain` (which takes one entry
 * of the socket's sent-callback queue, pushed here as engine.io's flush does) and `ready`
 * (which flushes what was queued meanwhile, after this frame). So per-socket order holds,
 * `volatile` still drops while a write is pending, and a slow reader still shows its backlog
 * in ws's `bufferedAmount`, which the slow-consumer guard reads.
 */

/** What a `ws` WebSocket exposes that the fast path uses (engine.io itself calls `_sender.sendFrame`). */
interface WsSocket {
  readyState: number;
  _socket?: { cork(): void; uncork(): void };
  _sender?: { sendFrame?: (list: Buffer[], cb: (err?: Error) => void) => void };
}

/** The parts of engine.io's WebSocket transport (engine.io/build/transports/websocket.js) used here. */
interface Transport {
  name: string;
  writable: boolean;
  opts?: { perMessageDeflate?: unknown };
  socket?: WsSocket;
  _onSentLast?: (err?: Error) => void;
}

/**
 * The engine.io server found with no `flush` or `drain` listener during one broadcast's delivery
 * loop, so that the check is made once per broadcast rather than per recipient. The caller clears
 * it whenever code it does not control may have run (and added a listener) since.
 */
export interface ServerCheck {
  clean: object | undefined;
}

/** The parts of an engine.io Socket (engine.io/build/socket.js) used here. */
export interface EngineConn {
  readyState: string;
  upgrading: boolean;
  writeBuffer: unknown[];
  sentCallbackFn: unknown[];
  transport: Transport;
  server: { listenerCount(event: string): number };
  listenerCount(event: string): number;
}

const WS_OPEN = 1;
/** Engine.IO v4's packet type for a message, before the Socket.IO packet string. */
const MESSAGE = "4";

/**
 * The unmasked, final, uncompressed text frame (RFC 6455 section 5.2) carrying Engine.IO message
 * `encoded` (a Socket.IO packet string), header and payload in one buffer: the bytes engine.io
 * and ws write for it when per-message deflate is off. Undefined for anything but one string
 * (binary attachments take the normal path).
 */
export function wsFrameOf(encoded: readonly unknown[]): Buffer | undefined {
  if (encoded.length !== 1 || typeof encoded[0] !== "string") return undefined;
  const text = MESSAGE + encoded[0];
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81; // FIN + opcode 1 (text)
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.write(text, header, "utf8");
  return frame;
}

/**
 * Direct writes not yet completed on a connection's transport. While any is, the transport stays
 * not writable (as while engine.io's own write is pending) and engine.io's queue stays empty, so
 * further direct writes may follow them in order; when the last completes, the transport's own
 * completion handler runs once, as after one engine.io flush.
 */
interface Pending {
  transport: Transport;
  writes: number;
  done: (err?: Error) => void;
}

const PENDING = Symbol("sockfleet.directWrites");

/**
 * TCP sockets corked by a direct write in this turn of the event loop, uncorked together right
 * after it: broadcasts delivered in one turn (a chunk of the data link carries several under load)
 * reach each client in one `writev` instead of one system call each, the largest per-delivery cost.
 */
const corked = new Set<{ cork(): void; uncork(): void }>();

function uncorkAll(): void {
  for (const socket of corked) socket.uncork();
  corked.clear();
}

function pendingOf(conn: EngineConn & { [PENDING]?: Pending }, transport: Transport, onSentLast: (err?: Error) => void): Pending {
  const known = conn[PENDING];
  if (known !== undefined && known.transport === transport) return known;
  const pending: Pending = {
    transport,
    writes: 0,
    done: (err) => {
      if (err) {
        pending.writes = 0;
        onSentLast(err);
      } else if (--pending.writes === 0) onSentLast();
    },
  };
  conn[PENDING] = pending;
  return pending;
}

/**
 * Writes `frame` straight to `conn`'s WebSocket if Engine.IO would write it at once, or queue it
 * behind direct writes only, and nothing else would notice the difference; returns false
 * (nothing written) otherwise, for the caller to take the normal path. Falls back when: the
 * transport is not a WebSocket (polling), engine.io's own write is pending or packets wait in its
 * queue, per-message deflate is on, an upgrade is in progress, the socket is not open, or anyone
 * but the slow-consumer guard listens to the per-packet events (the admin UI counts `packetCreate`).
 * A `volatile` frame is not written while a write is pending (engine.io drops it then), and falls
 * back so that socket.io's writeToEngine drops it.
 */
export function sendDirect(conn: EngineConn, frame: Buffer, volatile = false, server?: ServerCheck): boolean {
  const transport = conn.transport;
  // A volatile packet is dropped while a write is pending (socket.io's writeToEngine does that on fallback).
  if (volatile && !transport.writable) return false;
  if (transport.name !== "websocket" || conn.readyState !== "open" || conn.upgrading || conn.writeBuffer.length > 0) return false;
  const ws = transport.socket;
  const onSentLast = transport._onSentLast;
  if (ws === undefined || ws.readyState !== WS_OPEN || typeof onSentLast !== "function" || transport.opts?.perMessageDeflate) return false;
  const sender = ws._sender;
  if (sender === undefined || typeof sender.sendFrame !== "function") return false;
  const watch = watchOf(conn);
  const own = watch === undefined ? 0 : 1;
  if (conn.listenerCount("packetCreate") !== own || conn.listenerCount("flush") !== own || conn.listenerCount("drain") !== 0) return false;
  if (server?.clean !== conn.server) {
    if (conn.server.listenerCount("flush") !== 0 || conn.server.listenerCount("drain") !== 0) return false;
    if (server !== undefined) server.clean = conn.server;
  }
  const pending = pendingOf(conn, transport, onSentLast);
  // Not writable: engine.io's write is pending (its next packets must queue behind it), unless
  // what is pending is only direct writes.
  if (!transport.writable && pending.writes === 0) return false;
  if (transport.writable) {
    // What engine.io's flush() and its WebSocket transport's send() do before writing.
    conn.sentCallbackFn.push(null);
    transport.writable = false;
  }
  const tcp = ws._socket;
  if (tcp !== undefined && !corked.has(tcp)) {
    if (corked.size === 0) process.nextTick(uncorkAll);
    tcp.cork();
    corked.add(tcp);
  }
  pending.writes++;
  sender.sendFrame([frame], pending.done);
  if (watch !== undefined) countDirectWrite(watch, frame.length);
  return true;
}
