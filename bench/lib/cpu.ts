/** Machine-wide CPU use from /proc/stat: tells a busy box (the generator or a backlog) from a slow server. */
import fs from "node:fs";

interface Jiffies {
  busy: number;
  /** irq + softirq: on loopback, mostly the kernel moving TCP segments, charged to no process. */
  irq: number;
  total: number;
}

function read(): Jiffies {
  try {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, irq: (v[5] ?? 0) + (v[6] ?? 0), total };
  } catch {
    return { busy: 0, irq: 0, total: 0 };
  }
}

export class MachineCpu {
  private start = read();

  begin(): void {
    this.start = read();
  }

  /** Share of all cores busy since begin(), 0..1. */
  busy(): number {
    const now = read();
    const total = now.total - this.start.total;
    return total > 0 ? (now.busy - this.start.busy) / total : 0;
  }

  /** Share of all cores in irq/softirq since begin(), 0..1. */
  irq(): number {
    const now = read();
    const total = now.total - this.start.total;
    return total > 0 ? (now.irq - this.start.irq) / total : 0;
  }
}

/** Waits (bounded) until the whole machine is mostly idle, so no backlog leaks into the next step. */
export async function waitMachineIdle(maxBusy: number, windowMs: number, maxMs: number): Promise<number> {
  const started = Date.now();
  const m = new MachineCpu();
  for (;;) {
    m.begin();
    await new Promise((r) => setTimeout(r, windowMs));
    const busy = m.busy();
    if (busy <= maxBusy || Date.now() - started >= maxMs) return busy;
  }
}
