import { frameFromBody } from "../../ipc/frames";
import { argsFromFrame } from "../recovery/encoded";
import type { AppendOptions, EncodedArgs } from "../recovery/replay-log";

/** Tag the cluster adapter puts on its IPC messages. */
export const ADAPTER_SOURCE = "_sio_adapter";
/**
 * socket.io-adapter's uid of messages from no node of the cluster (@socket.io/redis-emitter's): a
 * worker's adapter ignores messages carrying its own uid, and counts other uids as nodes.
 */
export const EMITTER_UID = "emitter";
/** socket.io-adapter's MessageType values the relays build or route by. */
export const MessageType = {
  HEARTBEAT: 2,
  BROADCAST: 3,
  SOCKETS_JOIN: 4,
  SOCKETS_LEAVE: 5,
  DISCONNECT_SOCKETS: 6,
  SERVER_SIDE_EMIT: 9,
  /** Tells the others a node has left: its pending requests settle without it. */
  ADAPTER_CLOSE: 13,
} as const;

/** The fields of a cluster adapter message the relay routes by. */
export interface AdapterMessage {
  source: typeof ADAPTER_SOURCE;
  uid: string;
  nsp: string;
  type: number;
  /** Set on responses: the adapter uid of the node that asked. */
  requesterUid?: string;
  /** Set on broadcasts that need an offset (connection-state recovery): the worker's request id. */
  sequence?: number;
  /** The offset assigned by the primary, on broadcasts relayed to the other workers. */
  offset?: string;
  [key: string]: unknown;
}

export function isAdapterMessage(value: unknown): value is AdapterMessage {
  return typeof value === "object" && value !== null && (value as { source?: unknown }).source === ADAPTER_SOURCE;
}

/** The local worker that published a recoverable broadcast, and the id it awaits the offset under. */
export interface BroadcastOrigin {
  worker: number;
  requestId: number;
}

/** Assigns a recoverable broadcast its offset and logs it (connection-state recovery). */
export type Sequencer = (message: AdapterMessage, options?: AppendOptions) => string;

/**
 * Where the relay sends what must leave this host (the hosts tier's bridge). Without one, the
 * relay is the whole bus.
 */
export interface RelayUplink {
  /** A request, broadcast, heartbeat or departure for every other host. */
  publish(message: AdapterMessage): void;
  /** A response whose requester is not on this host. */
  publishResponse(message: AdapterMessage & { requesterUid: string }): void;
  /**
   * Present when the hosts tier orders recoverable broadcasts fleet-wide: it takes them and hands
   * each back through {@link ClusterRelay.deliverOrdered} once its place is known.
   */
  order?(message: AdapterMessage, origin: BroadcastOrigin, args?: EncodedArgs): void;
}

/** How the relay writes to workers: frames encoded once and written, as the same bytes, to each (primary/data-hub.ts). */
export interface RelayLinks {
  /** Undefined when the message cannot be encoded (logged there). */
  encode(message: unknown): Buffer | undefined;
  sendFrame(worker: number, frame: Buffer): void;
}

/** Picks the workers a message goes to (primary/room-routes.ts); without one, every worker. */
export interface WorkerRouter {
  /** `frame`: the message as it goes out, when already encoded (what routing keeps for joins). */
  targets(message: AdapterMessage, workers: number[], except: number | undefined, frame?: Buffer): number[];
}

/**
 * The local bus of the cores tier, in the primary: relays the cluster adapter's messages between
 * workers. Room broadcasts go to the other workers holding a member (see primary/room-routes.ts),
 * requests and other broadcasts to every other worker; responses (fetchSockets and
 * serverSideEmit replies, broadcast ack counts and acks) go only to the worker that asked.
 * When a worker dies, the relay announces the departure of each of its adapters at once, so the
 * requests waiting on it settle now rather than after the heartbeat timeout.
 */
export class ClusterRelay {
  /** adapter uid -> the worker and namespace it lives in. */
  private readonly owners = new Map<string, { worker: number; nsp: string }>();

  private uplink?: RelayUplink;

  /**
   * @param sequencer assigns an offset to a recoverable broadcast (connection-state recovery);
   *   the offset goes back to the publishing worker and along with the broadcast to the others.
   */
  constructor(
    private readonly workers: () => number[],
    private readonly links: RelayLinks,
    private readonly sequencer?: Sequencer,
    private readonly router?: WorkerRouter,
  ) {}

  /** Connects the local bus to other hosts. */
  setUplink(uplink: RelayUplink): void {
    this.uplink = uplink;
  }

  /** Adapter uids living on this host, with their namespace. */
  localAdapters(): Array<{ uid: string; nsp: string }> {
    return [...this.owners].map(([uid, owner]) => ({ uid, nsp: owner.nsp }));
  }

  /**
   * A message from another host: every local worker gets it. (Recoverable broadcasts from other
   * hosts come through {@link deliverOrdered}, in the shared log's order.)
   */
  deliverRemote(message: AdapterMessage): void {
    this.broadcast(message, undefined);
  }

  /** A response from another host to a local requester; false when no local worker owns it. */
  deliverResponse(message: AdapterMessage): boolean {
    if (message.requesterUid === undefined) return false;
    return this.respond(message, undefined);
  }

  private respond(message: AdapterMessage, body: Buffer | undefined): boolean {
    const owner = this.owners.get(message.requesterUid!);
    if (!owner) return false;
    const frame = body ? frameFromBody(body) : this.links.encode(message);
    if (frame) this.links.sendFrame(owner.worker, frame);
    return true;
  }

  /**
   * Handles one message from a worker; returns false when it is not adapter traffic. `body`, the
   * bytes it arrived in, is what the replay log keeps of a recoverable broadcast.
   */
  onMessage(from: number, message: unknown, body?: Buffer): boolean {
    if (!isAdapterMessage(message)) return false;
    if (!this.owners.has(message.uid)) this.owners.set(message.uid, { worker: from, nsp: message.nsp });
    if (message.requesterUid !== undefined) {
      // Not a local requester: it lives on another host (the bridge knows which) or is gone.
      if (!this.respond(message, body)) this.uplink?.publishResponse(message as AdapterMessage & { requesterUid: string });
      return true;
    }
    if (message.sequence !== undefined) {
      const origin = { worker: from, requestId: message.sequence };
      message.sequence = undefined;
      const args = body && this.sequencer ? argsFromFrame(body) : undefined;
      if (this.uplink?.order) this.uplink.order(message, origin, args);
      else {
        this.deliverOrdered(message, origin, { encoded: args }, body);
        this.uplink?.publish(message);
      }
      return true;
    }
    // Forwarded as it arrived: the relay reads these messages but never changes them.
    this.broadcast(message, from, body && frameFromBody(body));
    this.uplink?.publish(message);
    return true;
  }

  /**
   * Delivers a recoverable broadcast to this host's workers in the order calls come: sequenced
   * (logged, given its offset), the offset sent back to its origin worker, which delivers it to
   * its own clients, and the broadcast to every other worker.
   *
   * `body`: the bytes the broadcast arrived in from a local worker (valid during the call). The
   * other workers get them as they are, with the offset in the frame's tag, instead of the
   * message encoded again.
   */
  deliverOrdered(message: AdapterMessage, origin?: BroadcastOrigin, options?: AppendOptions, body?: Buffer): void {
    const offset = this.sequencer?.(message, options) ?? "";
    message.offset = offset;
    if (origin) {
      const reply = this.links.encode({ sf: "offset", id: origin.requestId, offset });
      if (reply) this.links.sendFrame(origin.worker, reply);
    }
    // Without an offset (recovery off in the primary) the tag stays empty and the worker reads none.
    this.broadcast(message, origin?.worker, body && offset !== "" ? frameFromBody(body, offset) : undefined);
  }

  /**
   * A recoverable broadcast of `origin` that the shared log routed to a room no worker of this host
   * has a member of (tiers/redis/log-routes.ts): not logged here, and its origin delivers it to nobody.
   */
  settleAway(origin: BroadcastOrigin): void {
    const reply = this.links.encode({ sf: "offset", id: origin.requestId, offset: "", away: true });
    if (reply) this.links.sendFrame(origin.worker, reply);
  }

  /** Logs, without delivering, a broadcast this host already delivered (see AppendOptions.copy). */
  recordOrdered(message: AdapterMessage, streamId: string, args?: EncodedArgs): void {
    this.sequencer?.(message, { streamId, copy: true, encoded: args });
  }

  /** Worker `id` exited: its adapters will never answer again. */
  workerGone(id: number): void {
    for (const [uid, owner] of this.owners) {
      if (owner.worker !== id) continue;
      this.owners.delete(uid);
      const close: AdapterMessage = { source: ADAPTER_SOURCE, uid, nsp: owner.nsp, type: MessageType.ADAPTER_CLOSE };
      this.broadcast(close, id);
      this.uplink?.publish(close);
    }
  }

  /**
   * `message` to the workers the router picks (every worker but `except` without one), as `frame`
   * when given (its bytes), else encoded here once; the same bytes go to each.
   */
  private broadcast(message: AdapterMessage, except: number | undefined, frame?: Buffer): void {
    const targets = this.router ? this.router.targets(message, this.workers(), except, frame) : this.workers().filter((worker) => worker !== except);
    let encoded = frame;
    for (const worker of targets) {
      encoded ??= this.links.encode(message);
      if (!encoded) return;
      this.links.sendFrame(worker, encoded);
    }
  }
}
