/** Tag the cluster adapter puts on its IPC messages. */
export const ADAPTER_SOURCE = "_sio_adapter";
/** socket.io-adapter's MessageType.ADAPTER_CLOSE: tells the others a node has left. */
const ADAPTER_CLOSE = 13;

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

/**
 * The local bus of the cores tier, in the primary: relays the cluster adapter's messages between
 * workers. Requests and broadcasts go to every other worker; responses (fetchSockets and
 * serverSideEmit replies, broadcast ack counts and acks) go only to the worker that asked.
 * When a worker dies, the relay announces the departure of each of its adapters at once, so the
 * requests waiting on it settle now rather than after the heartbeat timeout.
 */
export class ClusterRelay {
  /** adapter uid -> the worker and namespace it lives in. */
  private readonly owners = new Map<string, { worker: number; nsp: string }>();

  /**
   * @param sequencer assigns an offset to a recoverable broadcast (connection-state recovery);
   *   the offset goes back to the publishing worker and along with the broadcast to the others.
   */
  constructor(
    private readonly workers: () => number[],
    private readonly send: (worker: number, message: unknown) => void,
    private readonly sequencer?: (message: AdapterMessage) => string,
  ) {}

  /** Handles one message from a worker; returns false when it is not adapter traffic. */
  onMessage(from: number, message: unknown): boolean {
    if (!isAdapterMessage(message)) return false;
    if (!this.owners.has(message.uid)) this.owners.set(message.uid, { worker: from, nsp: message.nsp });
    if (message.requesterUid !== undefined) {
      const owner = this.owners.get(message.requesterUid);
      if (owner) this.send(owner.worker, message);
      return true;
    }
    if (message.sequence !== undefined) {
      const offset = this.sequencer?.(message) ?? "";
      this.send(from, { sf: "offset", id: message.sequence, offset });
      message.sequence = undefined;
      message.offset = offset;
    }
    this.broadcast(message, from);
    return true;
  }

  /** Worker `id` exited: its adapters will never answer again. */
  workerGone(id: number): void {
    for (const [uid, owner] of this.owners) {
      if (owner.worker !== id) continue;
      this.owners.delete(uid);
      this.broadcast({ source: ADAPTER_SOURCE, uid, nsp: owner.nsp, type: ADAPTER_CLOSE }, id);
    }
  }

  private broadcast(message: AdapterMessage, except: number): void {
    for (const worker of this.workers()) if (worker !== except) this.send(worker, message);
  }
}
