import { NodeClusterAdapter } from "@socket.io/cluster-adapter";
import { asOneBurst } from "../../worker/guard/slow-consumer";
import type { Namespace } from "socket.io";
import { MessageType, type BroadcastOptions, type ClusterMessage, type ClusterResponse, type Room, type Session, type SocketId } from "socket.io-adapter";
import type { DataLink } from "../../worker/data-link";
import { RECOVERING_TTL_MS } from "../../ipc/messages";
import { ADAPTER_SOURCE, EMITTER_UID, isAdapterMessage } from "./relay";
import { takesOffsets, type OffsetRule } from "../recovery/offset-clients";
import { RoomAnnouncer } from "./room-announcer";
import { fanOut, type DeliverySocket, type FanoutAdapter, type Packet } from "./fanout";

/**
 * A broadcast waits for its offset as long as the primary lives (if it dies, this worker exits):
 * delivering without one would break exactly-once replay. The bound only guards against a bug.
 */
const OFFSET_TIMEOUT_MS = 60_000;
const RESTORE_TIMEOUT_MS = 10_000;
const EVENT = 2;
/** The uid socket.io-adapter gives messages from an emitter (not a node of the cluster). */

/** socket.io-adapter's wire form of BroadcastOptions (sets become arrays). */
function encodeOptions(opts: BroadcastOptions): { rooms: string[]; except: string[]; flags: BroadcastOptions["flags"] } {
  return { rooms: [...opts.rooms].map(String), except: [...(opts.except ?? [])].map(String), flags: opts.flags };
}

function cloneable(data: unknown): unknown {
  try {
    structuredClone(data);
    return data;
  } catch {
    return undefined; // socket.data with class instances or functions cannot cross processes
  }
}

/** Whether a broadcast to `opts` reaches a socket in `rooms` (iterating the sets: this runs per broadcast). */
function meantFor(rooms: Set<Room>, opts: { rooms: Set<Room>; except?: Set<Room> }): boolean {
  for (const room of opts.except ?? []) if (rooms.has(room)) return false;
  if (opts.rooms.size === 0) return true;
  for (const room of opts.rooms) if (rooms.has(room)) return true;
  return false;
}

/**
 * @socket.io/cluster-adapter's protocol over sockfleet's data link (see primary/data-hub.ts)
 * instead of the IPC channel, with connection-state recovery when `recovery` is on.
 *
 * Stock cluster-adapter returns no offsets, so turning recovery on does nothing. Here every
 * recoverable broadcast is sequenced by the primary, which logs it and returns its offset, and
 * sessions are tracked in the primary as they change, so they survive the death of this worker.
 * Ordering makes replay exact: this worker's own broadcasts are delivered locally when the
 * primary's offset reply is handled, and remote ones when they arrive, both synchronously in the
 * link's message order, so every client sees broadcasts in the primary's order and its last
 * offset splits the log into what it has and what it missed.
 */
export class FleetAdapter extends NodeClusterAdapter {
  /**
   * Restored sessions whose socket has not connected yet, with the packets they missed; broadcasts
   * that arrive meanwhile are added. They are written right after the CONNECT packet, not before
   * it as socket.io does: socket.io-client buffers events that precede CONNECT and keeps that
   * buffer across a reconnection, so if this connection dropped before CONNECT the next recovery
   * would deliver them twice.
   */
  private readonly recovering = new Map<string, { missed: unknown[][]; rooms: Set<string>; expires: number }>();

  /** Set by {@link FleetAdapter.for} on the subclass; read through the class because the base
   *  constructor already publishes (its first heartbeat) before subclass fields exist. */
  static link?: DataLink;
  static recovery = false;
  static offsetRule: OffsetRule = "auto";
  /** Whether each socket takes offsets, decided once (its handshake does not change). */
  private readonly offsetTakers = new WeakMap<object, boolean>();
  static announcer?: RoomAnnouncer;
  static directWrites = true;

  constructor(nsp: Namespace) {
    super(nsp, {});
    // Registered before any app listener: runs right after socket.io has written CONNECT.
    nsp.on("connection", (socket) => this.replayMissed(socket));
    // Synchronous, inside join() and leave(): see RoomAnnouncer for why the join must be stamped then.
    const announcer = (this.constructor as typeof FleetAdapter).announcer;
    if (announcer) {
      this.on("create-room", (room: Room) => announcer.joined(this.nsp.name, String(room)));
      this.on("delete-room", (room: Room) => announcer.left(this.nsp.name, String(room)));
    }
    this.link.on("message", (message) => {
      if (isAdapterMessage(message) && message.nsp === this.nsp.name) this.onMessage(message as unknown as ClusterMessage, message.offset);
    });
  }

  /** The adapter class for socket.io's `adapter` option (socket.io constructs it with `new`). */
  static for(link: DataLink, recovery: boolean, offsetRule: OffsetRule = "auto", directWrites = true): typeof FleetAdapter {
    return class extends FleetAdapter {
      static override directWrites = directWrites;
      static override link = link;
      static override recovery = recovery;
      static override offsetRule = offsetRule;
      static override announcer = new RoomAnnouncer(link);
    };
  }

  private get link(): DataLink {
    const link = (this.constructor as typeof FleetAdapter).link;
    if (!link) throw new Error("FleetAdapter used without a data link; create it with FleetAdapter.for(link, recovery)");
    return link;
  }

  private get recovery(): boolean {
    return (this.constructor as typeof FleetAdapter).recovery;
  }

  override doPublish(message: ClusterMessage): Promise<string> {
    this.link.send({ ...message, source: ADAPTER_SOURCE });
    return Promise.resolve("");
  }

  override doPublishResponse(requesterUid: string, response: ClusterResponse): Promise<void> {
    this.link.send({ ...response, source: ADAPTER_SOURCE, requesterUid });
    return Promise.resolve();
  }

  // Synchronous, so that a refusal (see DataLink.refuseWhenFull) throws to the code that emitted,
  // before anything is delivered, locally or elsewhere.
  override broadcast(packet: Packet, opts: BroadcastOptions): Promise<void> {
    if (!opts.flags?.local && !this.link.refuseWhenFull(opts.flags?.volatile === true)) return Promise.resolve();
    return this.broadcastNow(packet, opts);
  }

  override broadcastWithAck(...args: Parameters<NodeClusterAdapter["broadcastWithAck"]>): void {
    if (!args[1].flags?.local) this.link.refuseWhenFull(false);
    super.broadcastWithAck(...args);
  }

  override serverSideEmit(packet: unknown[]): Promise<unknown> {
    this.link.refuseWhenFull(false);
    return super.serverSideEmit(packet);
  }

  private async broadcastNow(packet: Packet, opts: BroadcastOptions): Promise<void> {
    const recoverable = this.recovery && !opts.flags?.local && !opts.flags?.volatile && packet.type === EVENT && packet.id === undefined;
    if (!recoverable) {
      // Acks need engine.io's packet callbacks: socket.io-adapter's path.
      if (packet.id !== undefined) return super.broadcast(packet as never, opts);
      // What cluster-adapter's broadcast does (no offset: these are not sequenced), delivering
      // after the publication as it does, through the fast path.
      if (!opts.flags?.local) {
        try {
          await (this as unknown as { publishAndReturnOffset(message: object): Promise<string> }).publishAndReturnOffset({ type: MessageType.BROADCAST, data: { packet, opts: encodeOptions(opts) } });
        } catch {
          // As cluster-adapter: delivered locally even if publishing failed (doPublish here does not fail).
        }
      }
      this.deliverLocal(packet, opts, undefined);
      return;
    }
    const deliver = (offset: string | undefined): void => {
      if (offset === undefined) return void this.deliverLocal(packet, opts, undefined);
      this.feedRecovering(this.deliverLocal(packet, opts, offset), opts);
    };
    const id = this.link.expect(
      (reply) => {
        // Routed to a room this host held no member of: any member since joined gets it in its join's catch-up.
        if (reply.sf === "offset" && reply.away) return;
        deliver(reply.sf === "offset" ? reply.offset : undefined);
      },
      () => deliver(undefined),
      OFFSET_TIMEOUT_MS,
    );
    (this as unknown as { scheduleHeartbeat(): void }).scheduleHeartbeat();
    this.link.send({
      source: ADAPTER_SOURCE,
      uid: this.uid,
      nsp: this.nsp.name,
      type: MessageType.BROADCAST,
      data: { packet, opts: encodeOptions(opts) },
      sequence: id,
    });
  }

  override onMessage(message: ClusterMessage, offset?: string): void {
    const remote = message.uid !== this.uid && message.nsp === this.nsp.name;
    if (!remote || message.type !== MessageType.BROADCAST || message.data.requestId !== undefined) return super.onMessage(message, offset);
    // What ClusterAdapterWithHeartbeat.onMessage does first: the sender is alive.
    if (message.uid && message.uid !== EMITTER_UID) (this as unknown as { nodesMap: Map<string, number> }).nodesMap.set(message.uid, Date.now());
    const { opts, packet } = message.data as { opts: { rooms: Room[]; except: Room[]; flags?: BroadcastOptions["flags"] }; packet: Packet };
    const decoded = { rooms: new Set(opts.rooms), except: new Set(opts.except), flags: opts.flags };
    // What socket.io-adapter's ClusterAdapter does with an offset (addOffsetIfNecessary), per class.
    const sequenced = this.recovery && !!offset && packet.type === EVENT && packet.id === undefined && opts.flags?.volatile === undefined;
    if (sequenced) return this.feedRecovering(this.deliverLocal(packet, decoded, offset), decoded);
    // Any other broadcast from elsewhere: cluster-adapter's handling, delivered through the fast path.
    (this as unknown as { addOffsetIfNecessary(packet: Packet, opts: BroadcastOptions, offset?: string): void }).addOffsetIfNecessary(packet, decoded, offset);
    this.deliverLocal(packet, decoded, undefined);
  }

  /**
   * Delivers a broadcast without an ack to this worker's sockets (see fanout.ts): a sequenced one
   * (`offset` given) with its offset to the clients that take offsets. Returns the arguments with
   * the offset (what a recovering session is replayed).
   */
  private deliverLocal(packet: Packet, opts: BroadcastOptions, offset: string | undefined): unknown[] {
    const adapter = this as unknown as FanoutAdapter;
    return fanOut(adapter, packet, opts, offset, (socket) => this.takesOffsets(socket), (this.constructor as typeof FleetAdapter).directWrites);
  }

  override addAll(id: SocketId, rooms: Set<Room>): void {
    super.addAll(id, rooms);
    if (!this.recovery) return;
    const socket = this.nsp.sockets.get(id);
    const first = socket !== undefined && rooms.has(id);
    this.link.send({
      sf: "rooms-joined",
      nsp: this.nsp.name,
      sid: id,
      rooms: [...rooms].map(String),
      pid: first ? socket.pid : undefined,
      data: first ? cloneable(socket.data) : undefined,
      offsets: first ? this.takesOffsets(socket as unknown as DeliverySocket) : undefined,
    });
  }

  override del(id: SocketId, room: Room): void {
    super.del(id, room);
    if (this.recovery) this.link.send({ sf: "rooms-left", nsp: this.nsp.name, sid: id, rooms: [String(room)] });
  }

  override delAll(id: SocketId): void {
    super.delAll(id);
    if (this.recovery) this.link.send({ sf: "socket-ended", nsp: this.nsp.name, sid: id });
  }

  override persistSession(session: Session): void {
    if (!this.recovery) return;
    this.link.send({
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
      this.link.request(
        (id) => ({ sf: "restore", id, nsp: this.nsp.name, pid, offset }),
        (reply) => {
          const session = reply.sf === "restored" ? reply.session : null;
          if (session) {
            const now = Date.now();
            for (const [sid, entry] of this.recovering) if (entry.expires < now) this.recovering.delete(sid);
            this.recovering.set(session.sid, { missed: session.missedPackets, rooms: new Set(session.rooms), expires: now + RECOVERING_TTL_MS });
          }
          resolve((session ? { ...session, rooms: new Set(session.rooms), missedPackets: [] } : null) as unknown as Session);
        },
        () => resolve(null as unknown as Session),
        RESTORE_TIMEOUT_MS,
      );
    });
  }

  private takesOffsets(socket: DeliverySocket): boolean {
    let takes = this.offsetTakers.get(socket);
    if (takes === undefined) this.offsetTakers.set(socket, (takes = takesOffsets(socket, (this.constructor as typeof FleetAdapter).offsetRule)));
    return takes;
  }

  private feedRecovering(data: unknown[], opts: { rooms: Set<Room>; except?: Set<Room> }): void {
    for (const [sid, entry] of this.recovering) {
      // Once connected, the socket gets broadcasts through its rooms.
      if (this.nsp.sockets.has(sid)) continue;
      if (meantFor(entry.rooms, opts)) entry.missed.push(data);
    }
  }

  private replayMissed(socket: { id: string; recovered: boolean }): void {
    const entry = this.recovering.get(socket.id);
    if (!entry) return;
    this.recovering.delete(socket.id);
    if (!socket.recovered) return;
    const { packet, conn } = socket as unknown as { packet(packet: { type: number; data: unknown[] }): void; conn: object };
    asOneBurst(conn, () => {
      for (const data of entry.missed) packet.call(socket, { type: EVENT, data });
    });
  }
}
