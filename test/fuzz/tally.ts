/** What was sent, by kind, and the last packets of each sender, to name the input behind a crash. */
export interface Recent {
  time: number;
  sender: string;
  kind: string;
  preview: string;
}

const RECENT_PER_SENDER = 24;

export function preview(data: string | Buffer): string {
  if (typeof data !== "string") return `<binary ${data.length} B: ${data.subarray(0, 24).toString("hex")}>`;
  const shown = JSON.stringify(data.length > 120 ? data.slice(0, 100) : data);
  return data.length > 120 ? `${shown}... (${data.length} chars)` : shown;
}

export class Tally {
  readonly counts = new Map<string, number>();
  private readonly recent = new Map<string, Recent[]>();

  /** `count` packets of `kind` were written to the server by `sender` (at `time`, when not just now). */
  sent(sender: string, kind: string, data: string | Buffer, count = 1, time = Date.now()): void {
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + count);
    const ring = this.recent.get(sender) ?? [];
    ring.push({ time, sender, kind, preview: preview(data) });
    if (ring.length > RECENT_PER_SENDER) ring.shift();
    this.recent.set(sender, ring);
  }

  get total(): number {
    let sum = 0;
    for (const n of this.counts.values()) sum += n;
    return sum;
  }

  /** Packets sent in the `ms` before `time`, oldest first. */
  sentBefore(time: number, ms: number): Recent[] {
    return [...this.recent.values()].flat().filter((r) => r.time <= time && r.time >= time - ms).sort((a, b) => a.time - b.time);
  }

  /** "kind: n" lines, grouped by transport prefix, largest first. */
  format(): string {
    return [...this.counts.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([k, n]) => `${k}: ${n}`).join("\n");
  }
}
