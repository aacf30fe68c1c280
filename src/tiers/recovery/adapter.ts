import { NodeClusterAdapter } from "@socket.io/cluster-adapter";
import type { Namespace } from "socket.io";
import { Adapter, MessageType, type BroadcastOptions, type ClusterMessage, type Room, type Session, type SocketId } from "socket.io-adapter";
import { sendToPrimary } from "../../ipc/messages";
import { primaryRequests } from "../../ipc/requests";
import type { RecoveredSession } from "./store";
import { ADAPTER_SOURCE } from "../cluster/relay";

/** A broadcast waits at most this long for its offset; then it is delivered locally without one. */
const OFFSET_TIMEOUT_MS = 5_000;
const RESTORE_TIMEOUT_MS = 5_000;
/** A restored session whose socket never materialises (client gone meanwhile) is dropped after this. */
const RECOVERING_TTL_MS = 10_000;
const EVENT = 2;

interface Packet {
  type: number;
  data: unknown[];
  id?: number;
  nsp?: string;
}

/** socket.io-adapter's wire form of BroadcastOptions (sets become arrays). */
function encodeOptions(opts: BroadcastOptions): { rooms: string[]; except: string[]; flags: BroadcastOptions["flags"] } {
  return { rooms: [...opts.rooms].map(String), except: [...(opts.except ?? [])].map(String), flags: opts.flags };
}

function cloneable(data: unknown): unknown {
  try {
    structuredClone(data);
    return data;
  } catch {
    return undefined; // socket.data with class instances or functions cannot cross IPC
  }
}

/**
 * The cluster adapter with connection-state recovery. Stock @socket.io/cluster-adapter returns no
 * offsets, so turning recovery on does nothing. Here every recoverable broadcast is sequenced by
 * the primary, which logs it and returns its offset, and sessions are tracked in the primary as
 * they change, so they survive the death of this worker.
 *
 * Ordering is what makes replay exact: local delivery of this worker's own broadcasts happens
 * when the primary's offset reply is handled, and remote broadcasts when they arrive, both
 * synchronously inside IPC message events, so every client sees broadcasts in the primary's
 * order and its last offset splits the log into what it has and what it missed.
 */
export class RecoveringClusterAdapter extends NodeClusterAdapter {
  /** Restored sessions whose socket is not built yet: broadcasts meanwhile are added to their missed packets. */
  private readonly recovering = new Map<string, { session: RecoveredSession; rooms: Set<string>; expires: number }>();

  constructor(nsp: Namespace) {
    super(nsp, {});
  }

  override async broadcast(packet: Packet, opts: BroadcastOptions): Promise<void> {
    const recoverable = !opts.flags?.local && !opts.flags?.volatile && packet.type === EVENT && packet.id === undefined;
    if (!recoverable) return super.broadcast(packet as never, opts);
    const deliver = (offset: string | undefined): void => {
      if (offset !== undefined) packet.data.push(offset);
      Adapter.prototype.broadcast.call(this, packet as never, opts);
      if (offset !== undefined) this.feedRecovering(packet.data, opts);
    };
    const requests = primaryRequests();
    const id = requests.expect(
      (reply) => deliver(reply.sf === "offset" ? reply.offset : undefined),
      () => deliver(undefined),
      OFFSET_TIMEOUT_MS,
    );
    const message = {
      source: ADAPTER_SOURCE,
      uid: this.uid,
      nsp: this.nsp.name,
      type: MessageType.BROADCAST,
      data: { packet, opts: encodeOptions(opts) },
      sequence: id,
    };
    (this as unknown as { scheduleHeartbeat(): void }).scheduleHeartbeat();
    process.send?.(message, undefined, {}, () => undefined);
  }

  /** Remote broadcasts carry the offset the primary assigned as `offset`. */
  override onMessage(message: ClusterMessage, offset?: string): void {
    const effective = offset ?? (message as { offset?: string }).offset;
    super.onMessage(message, effective);
    if (message.type !== MessageType.BROADCAST || !effective || message.data.requestId !== undefined) return;
    if (this.recovering.size === 0) return;
    const { opts, packet } = message.data;
    this.feedRecovering((packet as Packet).data, { rooms: new Set(opts.rooms), except: new Set(opts.except) });
  }

  override addAll(id: SocketId, rooms: Set<Room>): void {
    super.addAll(id, rooms);
    // Socket.IO's Socket constructor joins a restored session's rooms, then replays missedPackets:
    // from here on broadcasts reach the socket through the rooms.
    this.recovering.delete(id);
    const socket = this.nsp.sockets.get(id);
    const first = socket !== undefined && rooms.has(id);
    sendToPrimary({
      sf: "rooms-joined",
      nsp: this.nsp.name,
      sid: id,
      rooms: [...rooms].map(String),
      pid: first ? socket.pid : undefined,
      data: first ? cloneable(socket.data) : undefined,
    });
  }

  override del(id: SocketId, room: Room): void {
    super.del(id, room);
    sendToPrimary({ sf: "rooms-left", nsp: this.nsp.name, sid: id, rooms: [String(room)] });
  }

  override delAll(id: SocketId): void {
    super.delAll(id);
    sendToPrimary({ sf: "socket-ended", nsp: this.nsp.name, sid: id });
  }

  override persistSession(session: Session): void {
    sendToPrimary({
      sf: "session-persisted",
      nsp: this.nsp.name,
      sid: session.sid,
      pid: session.pid,
      rooms: [...session.rooms].map(String),
      data: cloneable(session.data),
    });
  }

  // socket.io-adapter types this as Promise<Session>, but null (no session) is what socket.io expects.
  override restoreSession(pid: string, offset: string): Promise<Session> {
    return new Promise((resolve) => {
      primaryRequests().send(
        (id) => ({ sf: "restore", id, nsp: this.nsp.name, pid, offset }),
        (reply) => {
          const session = reply.sf === "restored" ? reply.session : null;
          if (session) {
            const now = Date.now();
            for (const [sid, entry] of this.recovering) if (entry.expires < now) this.recovering.delete(sid);
            this.recovering.set(session.sid, { session, rooms: new Set(session.rooms), expires: now + RECOVERING_TTL_MS });
          }
          resolve((session ? { ...session, rooms: new Set(session.rooms) } : null) as unknown as Session);
        },
        () => resolve(null as unknown as Session),
        RESTORE_TIMEOUT_MS,
      );
    });
  }

  private feedRecovering(data: unknown[], opts: { rooms: Set<Room>; except?: Set<Room> }): void {
    for (const entry of this.recovering.values()) {
      const rooms = entry.rooms;
      if ([...(opts.except ?? [])].some((room) => rooms.has(room))) continue;
      if (opts.rooms.size > 0 && ![...opts.rooms].some((room) => rooms.has(room))) continue;
      entry.session.missedPackets.push(data);
    }
  }
}
