import type { BroadcastOptions } from "socket.io-adapter";
import { COUNT_DELIVERIES, type CountDeliveries } from "../../observability/metrics";
import { sendDirect, wsFrameOf, type EngineConn, type ServerCheck } from "../../worker/direct-send";
import type { HandshakeView } from "../recovery/offset-clients";

export interface Packet {
  type: number;
  data: unknown[];
  id?: number;
  nsp?: string;
}

/** The parts of socket.io's Socket that delivery touches (see socket.io-adapter's broadcast). */
export interface DeliverySocket extends HandshakeView {
  notifyOutgoingListeners?(packet: Packet): void;
  _anyOutgoingListeners?: unknown[];
  client: { writeToEngine(encoded: unknown[], opts: object): void; conn: EngineConn };
}

/** What {@link fanOut} uses of socket.io-adapter's in-memory Adapter (and the metrics' hook on it). */
export interface FanoutAdapter {
  nsp: { name: string };
  apply(opts: BroadcastOptions, fn: (socket: DeliverySocket) => void): void;
  _encode(packet: Packet, opts: object): unknown[];
  [COUNT_DELIVERIES]?: CountDeliveries;
}

/** One encoding of a broadcast, made when the first socket that needs it is met. */
interface Encoding {
  packet: Packet;
  opts: { preEncoded: true; volatile?: boolean; compress?: boolean };
  encoded?: unknown[];
  /** Its WebSocket frame for {@link sendDirect}; null when it has none (binary attachments). */
  frame?: Buffer | null;
}

/**
 * Delivers a broadcast (without an ack) to this worker's sockets in `opts`: what socket.io-adapter's
 * in-memory `broadcast` does, with each form encoded once, and written straight to idle WebSocket
 * clients when `directWrites` (see worker/direct-send.ts). A sequenced broadcast (`offset` given)
 * has two forms: with its offset as the extra last argument for clients that take offsets
 * (`takesOffsets`), without it for the others (see recovery/offset-clients.ts); any other has one.
 * Returns the arguments with the offset (what a recovering session is replayed).
 */
export function fanOut(
  adapter: FanoutAdapter,
  packet: Packet,
  opts: BroadcastOptions,
  offset: string | undefined,
  takesOffsets: (socket: DeliverySocket) => boolean,
  directWrites: boolean,
): unknown[] {
  const flags = opts.flags ?? {};
  const volatile = flags.volatile === true;
  const nsp = adapter.nsp.name;
  const form = (data: unknown[]): Encoding => ({ packet: { ...packet, nsp, data }, opts: { preEncoded: true, volatile: flags.volatile, compress: flags.compress } });
  const without = form(packet.data);
  const withOffset = offset === undefined ? without : form([...packet.data, offset]);
  let recipients = 0;
  let direct = 0;
  // Without direct writes every encoding is marked as having no frame, so none is built.
  if (!directWrites) withOffset.frame = without.frame = null;
  // The engine server's listeners, checked once per broadcast, again only after code outside
  // this loop may have run (outgoing listeners, engine.io's events on a fallback write).
  const server: ServerCheck = { clean: undefined };
  adapter.apply(opts, (socket) => {
    const encoding = offset !== undefined && takesOffsets(socket) ? withOffset : without;
    socket.notifyOutgoingListeners?.(encoding.packet);
    if (socket._anyOutgoingListeners?.length) server.clean = undefined;
    encoding.encoded ??= adapter._encode(encoding.packet, encoding.opts);
    if (encoding.frame === undefined) encoding.frame = wsFrameOf(encoding.encoded) ?? null;
    // Straight to the WebSocket when engine.io would only have written it (see direct-send.ts).
    if (encoding.frame !== null && sendDirect(socket.client.conn, encoding.frame, volatile, server)) direct++;
    else {
      socket.client.writeToEngine(encoding.encoded, encoding.opts);
      server.clean = undefined;
    }
    recipients++;
  });
  adapter[COUNT_DELIVERIES]?.(packet.data[0], recipients, direct);
  return withOffset.packet.data;
}
