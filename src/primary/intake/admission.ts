import type { LimitName } from "../../observability/limits";

/**
 * One live connection's place in the host's counts. It is released once, when the connection
 * closes: in the primary before its hand-over, or in the worker that took it ("released" message),
 * or when that worker exits.
 */
export interface Ticket {
  /** Client address the connection counts against; undefined while a trusted proxy's head is unread. */
  key: string | undefined;
  /** A worker owns the connection now: closing the primary's copy of the handle does not release it. */
  transferred: boolean;
  released: boolean;
}

/**
 * Counts the connections the host holds, in total (--max-connections) and per client address
 * (--max-connections-per-ip), and decides whether one more is admitted. 0 switches a limit off.
 */
export class Admission {
  private total = 0;
  private readonly perKey = new Map<string, number>();

  constructor(private readonly limits: { maxConnections: number; maxConnectionsPerIp: number }) {}

  get connections(): number {
    return this.total;
  }

  /** Connections counted against `key` now. */
  countOf(key: string): number {
    return this.perKey.get(key) ?? 0;
  }

  /** A new connection from `key` (undefined: not known yet): its ticket, or the limit it would break. */
  admit(key: string | undefined): Ticket | LimitName {
    if (key !== undefined && this.overPerKey(key)) return "max-connections-per-ip";
    if (this.limits.maxConnections > 0 && this.total >= this.limits.maxConnections) return "max-connections";
    this.total++;
    if (key !== undefined) this.perKey.set(key, this.countOf(key) + 1);
    return { key, transferred: false, released: false };
  }

  /** The client behind a trusted proxy is known now: count the ticket against it, unless it is over its limit. */
  assign(ticket: Ticket, key: string): boolean {
    if (ticket.released || ticket.key !== undefined) return true;
    if (this.overPerKey(key)) return false;
    ticket.key = key;
    this.perKey.set(key, this.countOf(key) + 1);
    return true;
  }

  release(ticket: Ticket): void {
    if (ticket.released) return;
    ticket.released = true;
    this.total--;
    if (ticket.key === undefined) return;
    const left = this.countOf(ticket.key) - 1;
    if (left > 0) this.perKey.set(ticket.key, left);
    else this.perKey.delete(ticket.key);
  }

  private overPerKey(key: string): boolean {
    return this.limits.maxConnectionsPerIp > 0 && this.countOf(key) >= this.limits.maxConnectionsPerIp;
  }
}
