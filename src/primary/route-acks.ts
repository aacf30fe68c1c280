import type { ToWorker } from "../ipc/messages";
import type { CatchUp } from "./room-routes";
import type { RemoteCatchUp } from "../tiers/redis/host-routes";
import type { LateCatchUp } from "../tiers/redis/log-routes";

/**
 * Sends each worker the answers to its room announcements in the order it made them (its link
 * ends its holds oldest first, worker/data-link.ts), though an answer may wait for other hosts'
 * catch-ups (tiers/redis/host-routes.ts) while a later one needs nothing from them.
 */
export class RouteAcks {
  /** Worker -> the last answer still waiting for other hosts. */
  private readonly pending = new Map<number, Promise<void>>();

  constructor(private readonly write: (worker: number, message: ToWorker) => void) {}

  send(worker: number, id: number, items: CatchUp[], remote: Promise<RemoteCatchUp[]> | undefined, late?: Promise<LateCatchUp[]>): void {
    const before = this.pending.get(worker);
    if (!remote && !late && !before) return this.write(worker, { sf: "routes-ack", id, items });
    const sent = Promise.all([before, remote, late]).then(([, caught, logged]) => {
      this.write(worker, {
        sf: "routes-ack",
        id,
        items,
        ...(caught && caught.length > 0 ? { remote: caught } : {}),
        ...(logged && logged.length > 0 ? { late: logged } : {}),
      });
    });
    this.pending.set(worker, sent);
    void sent.then(() => {
      if (this.pending.get(worker) === sent) this.pending.delete(worker);
    });
  }

  workerGone(worker: number): void {
    this.pending.delete(worker);
  }
}
