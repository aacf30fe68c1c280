import type { LimitHits } from "../../observability/limits";

/** The parts of an Engine.IO socket and its transport the slow-consumer check reads. */
interface EngineSocket {
  id: string;
  readyState: string;
  transport: { name: string; socket?: { bufferedAmount: number; terminate(): void } };
  on(event: "packetCreate", fn: (this: never, packet: { data?: unknown }) => void): unknown;
  on(event: "flush", fn: (this: never) => void): unknown;
  close(discard?: boolean): unknown;
}


const sizeOf = (data: unknown): number =>
  typeof data === "string" ? data.length : Buffer.isBuffer(data) || ArrayBuffer.isView(data) || data instanceof ArrayBuffer ? (data as ArrayBuffer).byteLength : 0;

/** Per client: bytes queued in engine.io since its last flush, and the catch-up allowance. */
export interface Watch {
  conn: EngineSocket;
  maxBytes: number;
  hooks: LimitHits;
  queued: number;
  /** Bytes written inside {@link asOneBurst} still allowed on top of the cap. */
  allowance: number;
  bursting: boolean;
  dropped: boolean;
}

/** Where a watched Engine.IO socket keeps its Watch: a property read per packet, cheaper than a WeakMap lookup. */
const WATCH = Symbol("sockfleet.watch");
type Watched = EngineSocket & { [WATCH]?: Watch };

/** Clients written to in this event-loop turn, checked once after it (see {@link check}). */
const dirty = new Set<Watch>();
let scheduled = false;

/**
 * Packets written to a client inside `write` (a recovered session's missed packets, already
 * bounded by --recovery-max-bytes) are allowed on top of the cap until the client has read
 * below the cap once: a reader that keeps up must not be cut off for catching up.
 */
export function asOneBurst(conn: object, write: () => void): void {
  const watch = (conn as Watched)[WATCH];
  if (!watch) return write();
  watch.bursting = true;
  try {
    write();
  } finally {
    watch.bursting = false;
  }
}

/**
 * Disconnects a client whose pending outgoing data passes `maxBytes`: engine.io's write queue
 * (which has no bound) plus, over WebSocket, what `ws` holds because the kernel would not take it.
 * The check runs once per event-loop turn for the clients written to in it, after engine.io and
 * ws have handed what they could to the kernel: a burst emitted in one turn to a client that
 * reads is not mistaken for a stalled reader, and a delivery costs one addition and a Set insert.
 */
export function watchSlowConsumer(conn: EngineSocket, maxBytes: number, hooks: LimitHits): void {
  (conn as Watched)[WATCH] = { conn, maxBytes, hooks, queued: 0, allowance: 0, bursting: false, dropped: false };
  conn.on("flush", onFlush);
  conn.on("packetCreate", onPacketCreate);
}

// Listeners shared by every connection (`this` is the Engine.IO socket): closures per connection
// cost about 200 bytes each.
function onFlush(this: Watched): void {
  this[WATCH]!.queued = 0;
}

function onPacketCreate(this: Watched, packet: { data?: unknown }): void {
  const watch = this[WATCH]!;
  const size = sizeOf(packet.data);
  watch.queued += size;
  if (watch.bursting) watch.allowance += size;
  if (watch.dropped) return;
  markDirty(watch);
}

/** The guard's record of `conn`, if it is watched (for {@link countDirectWrite}). */
export function watchOf(conn: object): Watch | undefined {
  return (conn as Watched)[WATCH];
}

/**
 * A frame written straight to the client's WebSocket (worker/direct-send.ts), past engine.io's
 * queue: its bytes show in ws's bufferedAmount if the kernel does not take them, so only the
 * check (and a recovery burst's allowance) is due here, as for a packet engine.io queued.
 */
export function countDirectWrite(watch: Watch, bytes: number): void {
  if (watch.bursting) watch.allowance += bytes;
  if (watch.dropped) return;
  markDirty(watch);
}

function markDirty(watch: Watch): void {
  dirty.add(watch);
  if (!scheduled) {
    scheduled = true;
    setImmediate(checkDirty);
  }
}

function checkDirty(): void {
  scheduled = false;
  for (const watch of dirty) check(watch);
  dirty.clear();
}

function check(watch: Watch): void {
  const { conn, maxBytes } = watch;
  if (watch.dropped || conn.readyState === "closed") return;
  const ws = conn.transport.name === "websocket" ? conn.transport.socket : undefined;
  const pending = watch.queued + (ws?.bufferedAmount ?? 0);
  if (pending <= maxBytes) {
    watch.allowance = 0;
    return;
  }
  if (pending <= maxBytes + watch.allowance) return;
  watch.dropped = true;
  watch.hooks.hit("max-buffered-bytes", { sid: conn.id, transport: conn.transport.name, pending, max: maxBytes, reason: "slow consumer" }, "client disconnected: slow consumer");
  // Free its memory now: a close handshake would wait behind the full buffer (ws waits 30 s),
  // and engine.io's plain close() waits for the queue to drain, which it never will.
  if (ws) ws.terminate();
  else conn.close(true);
}
