import type { Logger } from "../../observability/logger";
import { ADAPTER_SOURCE, MessageType, type AdapterMessage } from "../cluster/relay";

/**
 * A bridge not heard from for this long is gone (host dead, or cut off from Redis): its adapters
 * are closed on this host so pending requests settle. Kept under the cluster adapter's own 5 s
 * request timeout so fetchSockets and serverSideEmit acks resolve rather than time out.
 */
export const BRIDGE_TIMEOUT_MS = 3_000;

interface RemoteBridge {
  lastSeen: number;
  /** adapter uid -> namespace */
  adapters: Map<string, string>;
}

/**
 * The other hosts' bridges this one hears from, and their adapters: whose host a response goes to
 * (by the requester's adapter uid), and which adapters to close on this host's workers when a
 * bridge falls silent or a heartbeat no longer lists them.
 */
export class RemoteBridges {
  private readonly remotes = new Map<string, RemoteBridge>();
  /** adapter uid -> id of the bridge of its host, for routing responses. */
  private readonly owners = new Map<string, string>();

  constructor(
    /** Hands a synthesized adapter message (HEARTBEAT, ADAPTER_CLOSE) to this host's workers. */
    private readonly deliver: (message: AdapterMessage) => void,
    /** A bridge fell silent (after its adapters were closed). */
    private readonly onGone: (bridge: string) => void,
    private readonly log: Logger,
  ) {}

  has(bridge: string): boolean {
    return this.remotes.has(bridge);
  }

  ids(): string[] {
    return [...this.remotes.keys()];
  }

  /** The bridge of the host holding adapter `uid`, if known. */
  ownerOf(uid: string): string | undefined {
    return this.owners.get(uid);
  }

  /** A message from `bridge` (any kind): it is alive; `adapter` names the adapter it came from, if any. */
  heard(bridge: string, adapter?: { uid: string; nsp: string; closed: boolean }): void {
    const remote = this.remote(bridge);
    if (!adapter) return;
    if (adapter.closed) {
      remote.adapters.delete(adapter.uid);
      this.owners.delete(adapter.uid);
    } else {
      remote.adapters.set(adapter.uid, adapter.nsp);
      this.owners.set(adapter.uid, bridge);
    }
  }

  /**
   * A heartbeat lists every adapter of that host. New ones are announced to local workers at once
   * (so server counts are right without waiting for the adapters' own 5 s heartbeats); ones that
   * vanished without a departure message are closed.
   */
  heartbeat(bridge: string, adapters: Array<[uid: string, nsp: string]>): void {
    const remote = this.remote(bridge);
    const listed = new Set<string>();
    for (const [uid, nsp] of adapters) {
      listed.add(uid);
      if (remote.adapters.has(uid)) continue;
      remote.adapters.set(uid, nsp);
      this.owners.set(uid, bridge);
      this.deliver({ source: ADAPTER_SOURCE, uid, nsp, type: MessageType.HEARTBEAT });
    }
    for (const [uid, nsp] of remote.adapters) {
      if (!listed.has(uid)) this.closeAdapter(remote, uid, nsp);
    }
  }

  /** Closes the adapters of every bridge silent for BRIDGE_TIMEOUT_MS and forgets it. Run periodically. */
  expire(now = Date.now()): void {
    for (const [bridge, remote] of this.remotes) {
      if (now - remote.lastSeen <= BRIDGE_TIMEOUT_MS) continue;
      this.log.warn({ remote: bridge, reason: "heartbeat timed out", silentMs: now - remote.lastSeen, adapters: remote.adapters.size }, "host left");
      for (const [uid, nsp] of remote.adapters) this.closeAdapter(remote, uid, nsp);
      this.remotes.delete(bridge);
      this.onGone(bridge);
    }
  }

  private remote(bridge: string): RemoteBridge {
    let remote = this.remotes.get(bridge);
    if (!remote) {
      remote = { lastSeen: Date.now(), adapters: new Map() };
      this.remotes.set(bridge, remote);
      this.log.info({ remote: bridge }, "host joined");
    }
    remote.lastSeen = Date.now();
    return remote;
  }

  private closeAdapter(remote: RemoteBridge, uid: string, nsp: string): void {
    remote.adapters.delete(uid);
    this.owners.delete(uid);
    this.deliver({ source: ADAPTER_SOURCE, uid, nsp, type: MessageType.ADAPTER_CLOSE });
  }
}
