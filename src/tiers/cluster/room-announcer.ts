import type { DataLink } from "../../worker/data-link";
import type { RouteJoin, RouteLeave, Stamp } from "../../primary/room-routes";

/** The primary answers as long as it lives (if it dies, this worker exits); the bound guards against a bug. */
const ACK_TIMEOUT_MS = 60_000;
/**
 * A worker that announced nothing for this long says so anyway, so the primary can let go of
 * the broadcasts it kept in case of a join of this worker still on its way.
 */
const TICK_MS = 100;

/**
 * Tells the primary which rooms this worker holds members of, so room broadcasts reach only the
 * workers that need them (primary/room-routes.ts). Only a room's first member joining and its last
 * one leaving are announced, batched per event-loop turn.
 *
 * A join is stamped, and the link starts holding incoming frames, before `socket.join()` returns;
 * the primary answers with what it routed elsewhere since that stamp, which the link places among
 * the held frames in the primary's order. So a broadcast emitted after the join, from any worker
 * or host, reaches the new member, however late the announcement.
 */
export class RoomAnnouncer {
  /** `${nsp}\0${room}` -> the last change this turn: a join's stamp, or null for a leave. */
  private readonly pending = new Map<string, { nsp: string; room: string; at: Stamp | null }>();
  private holding = false;
  private scheduled = false;
  private sentSinceTick = false;

  constructor(private readonly link: DataLink) {
    setInterval(() => {
      if (!this.sentSinceTick) this.flush();
      this.sentSinceTick = false;
    }, TICK_MS).unref();
  }

  joined(nsp: string, room: string): void {
    if (!this.holding) {
      this.link.hold();
      this.holding = true;
    }
    this.pending.set(`${nsp}\0${room}`, { nsp, room, at: process.hrtime.bigint() });
    this.schedule();
  }

  left(nsp: string, room: string): void {
    this.pending.set(`${nsp}\0${room}`, { nsp, room, at: null });
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    this.sentSinceTick = true;
    // Taken before reading `pending`: every join stamped before it is in this announcement or an earlier one.
    const upTo = process.hrtime.bigint();
    const joins: RouteJoin[] = [];
    const leaves: RouteLeave[] = [];
    for (const { nsp, room, at } of this.pending.values()) {
      if (at === null) leaves.push([nsp, room]);
      else joins.push([nsp, room, at]);
    }
    this.pending.clear();
    if (!this.holding) return this.link.send({ sf: "routes", joins, leaves, upTo });
    // A join followed by a leave in the same turn leaves no join to announce, but the hold it
    // started still needs an answer to end.
    this.holding = false;
    const id = this.link.expect(
      (reply) => (reply.sf === "routes-ack" ? this.link.release(reply.items, reply.remote, reply.late) : this.link.release([])),
      () => this.link.release([]),
      ACK_TIMEOUT_MS,
    );
    this.link.send({ sf: "routes", id, joins, leaves, upTo });
  }
}
