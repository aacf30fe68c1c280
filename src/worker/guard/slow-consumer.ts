import type { LimitName } from "../../observability/limits";

/** The parts of an Engine.IO socket and its transport the slow-consumer check reads. */
interface EngineSocket {
  id: string;
  readyState: string;
  transport: { name: string; socket?: { bufferedAmount: number; terminate(): void } };
  on(event: "packetCreate", fn: (packet: { data?: unknown }) => void): unknown;
  on(event: "flush", fn: () => void): unknown;
  close(discard?: boolean): unknown;
}

export interface SlowConsumerHooks {
  hit(limit: LimitName, details: Record<string, unknown>, message: string): void;
}

const sizeOf = (data: unknown): number =>
  typeof data === "string" ? data.length : Buffer.isBuffer(data) || ArrayBuffer.isView(data) || data instanceof ArrayBuffer ? (data as ArrayBuffer).byteLength : 0;

/**
 * Disconnects a client whose pending outgoing data passes `maxBytes`: engine.io's write queue
 * (which has no bound) plus, over WebSocket, what `ws` holds because the kernel would not take it.
 * The queue is tracked as packets are created and reset when engine.io hands it to the transport,
 * so the cost per delivery is one addition and one read of ws's bufferedAmount, no walk.
 */
export function watchSlowConsumer(conn: EngineSocket, maxBytes: number, hooks: SlowConsumerHooks): void {
  let queued = 0;
  let dropped = false;
  conn.on("flush", () => {
    queued = 0;
  });
  conn.on("packetCreate", (packet) => {
    queued += sizeOf(packet.data);
    if (dropped) return;
    const ws = conn.transport.name === "websocket" ? conn.transport.socket : undefined;
    const pending = queued + (ws?.bufferedAmount ?? 0);
    if (pending <= maxBytes) return;
    dropped = true;
    hooks.hit("max-buffered-bytes", { sid: conn.id, transport: conn.transport.name, pending, max: maxBytes, reason: "slow consumer" }, "client disconnected: slow consumer");
    // Free its memory now: a close handshake would wait behind the full buffer (ws waits 30 s),
    // and engine.io's plain close() waits for the queue to drain, which it never will.
    if (ws) ws.terminate();
    else conn.close(true);
  });
}
