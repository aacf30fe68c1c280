/**
 * How many sessions the recovery store holds in each room of each namespace, so the hosts tier
 * keeps reading a room's shared-log entries while a session of this host that may come back is
 * in it (tiers/redis/log-routes.ts): its replay is cut from this host's log.
 */
export class RoomTally {
  private readonly counts = new Map<string, number>();

  add(nsp: string, room: string): void {
    const key = `${nsp}\0${room}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  remove(nsp: string, room: string): void {
    const key = `${nsp}\0${room}`;
    const count = (this.counts.get(key) ?? 0) - 1;
    if (count > 0) this.counts.set(key, count);
    else this.counts.delete(key);
  }

  has(nsp: string, room: string): boolean {
    return this.counts.has(`${nsp}\0${room}`);
  }
}
