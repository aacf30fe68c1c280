import type { Stamp } from "../../primary/room-routes";
import { StampedLog } from "./stamped-log";

/**
 * How far back "what had this host heard of that bridge at time T" can be answered: as long as a
 * publisher keeps the room broadcasts it published (host-retention.ts). An older T answers 0.
 */
const KEEP_NS = 5_000_000_000n;

/**
 * Per other bridge, when this host heard which of its sequence numbers (gap-detector.ts): its
 * broadcasts and heartbeats carry them. A room join stamped T asks each publisher for the room
 * broadcasts numbered after the newest one heard at T: any broadcast emitted after the join was
 * published after that one was heard here, so it has a higher number (host-routes.ts).
 */
export class HeardLog {
  private readonly logs = new Map<string, StampedLog<number>>();

  heard(bridge: string, seq: number, now: Stamp = process.hrtime.bigint()): void {
    let log = this.logs.get(bridge);
    if (!log) this.logs.set(bridge, (log = new StampedLog<number>(KEEP_NS)));
    if (seq <= (log.newestValue() ?? -1)) return;
    log.push(seq, now);
  }

  /** The newest number heard from `bridge` at or before `stamp`; 0 when none (or too long ago to say). */
  at(bridge: string, stamp: Stamp): number {
    return this.logs.get(bridge)?.at(stamp) ?? 0;
  }

  forget(bridge: string): void {
    this.logs.delete(bridge);
  }
}
