import { originHost, type Gap } from "./gap-detector";

/** Rooms a publisher numbers its broadcasts to at most; the least recently used one starts again at 1 (a restart, never a gap). */
const MAX_NUMBERED_ROOMS = 100_000;

/**
 * Per-room numbering of room broadcasts across hosts (host-routes.ts). A bridge's own sequence
 * numbers have holes by design once room broadcasts skip hosts without members, so a host
 * subscribed to a room checks each publisher's numbers on that room instead.
 */
export class RoomNumbers {
  /** room key -> the number of this host's last broadcast to it (least recently used first). */
  private readonly last = new Map<string, number>();

  /** The number of this host's next broadcast to room `key`. */
  next(key: string): number {
    const n = (this.last.get(key) ?? 0) + 1;
    this.last.delete(key);
    this.last.set(key, n);
    if (this.last.size > MAX_NUMBERED_ROOMS) this.last.delete(this.last.keys().next().value!);
    return n;
  }
}

/**
 * Broadcast number `r` from `bridge` arrived for a room whose newest numbers per publisher are
 * `heard`: the gap it shows, if any. A number not above the last is a restart of the publisher's
 * count (the room was forgotten there), the new starting point.
 */
export function roomGap(heard: Map<string, number>, bridge: string, r: number): Gap | undefined {
  const last = heard.get(bridge);
  heard.set(bridge, r);
  if (last === undefined || r <= last + 1) return undefined;
  return { origin: originHost(bridge), bridge, missed: r - last - 1, from: last + 1, to: r - 1 };
}
