import type { Logger } from "../../observability/logger";

/**
 * Bridges remembered at most: each process of each host is one (its id carries a per-process
 * random part), so restarts add entries; the oldest heard-from are forgotten first.
 */
export const MAX_ORIGINS = 1_024;

/** Broadcasts from one other host that never reached this one. */
export interface Gap {
  /** The other host's --host-id. */
  origin: string;
  /** The bridge (one process of that host) whose broadcasts were missed. */
  bridge: string;
  /** How many were missed: `to - from + 1`. */
  missed: number;
  /** First and last sequence number missed. */
  from: number;
  to: number;
}

/**
 * The sending half: numbers the broadcasts a bridge publishes on Redis pub/sub, 1, 2, 3, ... for
 * the life of the process. A restarted host is a new bridge (new id), so its numbers start again
 * under a new name and never look like a gap or a replay.
 */
export class SequenceStamp {
  private last = 0;

  next(): number {
    return ++this.last;
  }

  /** The number of the newest broadcast stamped (0 before any): heartbeats carry it. */
  get current(): number {
    return this.last;
  }
}

/**
 * The receiving half: per origin bridge, the newest sequence number seen. A broadcast that skips
 * numbers, or a heartbeat announcing a number not yet seen, is a gap; each gap is reported once.
 * Heartbeats matter: without them broadcasts missed at the end of a burst would go unnoticed until
 * the origin's next broadcast.
 *
 * Redis pub/sub delivers one publisher's messages in order, so numbers only go up on one bridge;
 * the first number heard from a bridge is its baseline (this host may have started after it).
 */
export class GapDetector {
  private readonly newest = new Map<string, number>();

  constructor(
    private readonly onGap: (gap: Gap) => void,
    private readonly log: Logger,
  ) {}

  /** A broadcast numbered `seq` arrived from `bridge`. */
  broadcast(bridge: string, seq: number): void {
    this.advance(bridge, seq, seq - 1);
  }

  /** `bridge`'s heartbeat says its newest broadcast is numbered `seq`. */
  heartbeat(bridge: string, seq: number): void {
    this.advance(bridge, seq, seq);
  }

  /** `upTo`: the newest number that should have arrived before this message. */
  private advance(bridge: string, seq: number, upTo: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0) return;
    const prev = this.newest.get(bridge);
    if (prev !== undefined && seq <= prev) return;
    // Re-inserted so the map's order is least recently heard first.
    this.newest.delete(bridge);
    this.newest.set(bridge, seq);
    if (this.newest.size > MAX_ORIGINS) this.newest.delete(this.newest.keys().next().value!);
    if (prev === undefined || upTo <= prev) return;
    const gap: Gap = { origin: originHost(bridge), bridge, missed: upTo - prev, from: prev + 1, to: upTo };
    this.log.warn(gap, "broadcasts from another host were missed");
    this.onGap(gap);
  }
}

/** The host part of a bridge id (`${hostId}:${random}`). */
export function originHost(bridge: string): string {
  const cut = bridge.lastIndexOf(":");
  return cut === -1 ? bridge : bridge.slice(0, cut);
}
