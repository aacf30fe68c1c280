import type { Stamp } from "../../primary/room-routes";

/**
 * How far back "what had this host heard of that bridge at time T" can be answered: as long as a
 * publisher keeps the room broadcasts it published (host-retention.ts). An older T answers 0.
 */
const KEEP_NS = 5_000_000_000n;

interface Log {
  stamps: Stamp[];
  seqs: number[];
  head: number;
}

/**
 * Per other bridge, when this host heard which of its sequence numbers (gap-detector.ts): its
 * broadcasts and heartbeats carry them. A room join stamped T asks each publisher for the room
 * broadcasts numbered after the newest one heard at T: any broadcast emitted after the join was
 * published after that one was heard here, so it has a higher number (host-routes.ts).
 */
export class HeardLog {
  private readonly logs = new Map<string, Log>();

  heard(bridge: string, seq: number, now: Stamp = process.hrtime.bigint()): void {
    let log = this.logs.get(bridge);
    if (!log) this.logs.set(bridge, (log = { stamps: [], seqs: [], head: 0 }));
    const last = log.seqs.length > log.head ? log.seqs[log.seqs.length - 1] : -1;
    if (seq <= last) return;
    log.stamps.push(now);
    log.seqs.push(seq);
    // Forget what is older than KEEP_NS, keeping the newest such entry (it answers for older stamps).
    const cutoff = now - KEEP_NS;
    while (log.head + 1 < log.stamps.length && log.stamps[log.head + 1] <= cutoff) log.head++;
    if (log.head > 1024 && log.head * 2 > log.stamps.length) {
      log.stamps.splice(0, log.head);
      log.seqs.splice(0, log.head);
      log.head = 0;
    }
  }

  /** The newest number heard from `bridge` at or before `stamp`; 0 when none (or too long ago to say). */
  at(bridge: string, stamp: Stamp): number {
    const log = this.logs.get(bridge);
    if (!log) return 0;
    let lo = log.head;
    let hi = log.stamps.length - 1;
    let found = 0;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (log.stamps[mid] <= stamp) {
        found = log.seqs[mid];
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  forget(bridge: string): void {
    this.logs.delete(bridge);
  }
}
