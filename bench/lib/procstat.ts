/** CPU time, RSS and descendants of processes, read from /proc (Linux). */
import { execFileSync } from "node:child_process";
import fs from "node:fs";

function getconf(name: string, fallback: number): number {
  try {
    const v = Number(execFileSync("getconf", [name], { encoding: "utf8" }).trim());
    return Number.isFinite(v) && v > 0 ? v : fallback;
  } catch {
    return fallback;
  }
}

const CLK_TCK = getconf("CLK_TCK", 100);
const PAGE_SIZE = getconf("PAGESIZE", 4096);

export interface ProcSample {
  /** utime + stime, seconds. */
  cpu: number;
  /** Resident set size, bytes. */
  rss: number;
}

/** undefined when the process is gone. */
export function sample(pid: number): ProcSample | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces; fields after it start past the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime is field 14, stime 15, rss 24.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const rss = Number(rest[21]);
  return { cpu: (utime + stime) / CLK_TCK, rss: rss * PAGE_SIZE };
}

/** Direct children of `pid`, from /proc/<pid>/task/<tid>/children. */
export function children(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const text = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim();
      if (text) for (const c of text.split(/\s+/)) out.push(Number(c));
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

/** `pid` and all its descendants that are alive now. */
export function tree(pid: number): number[] {
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (!fs.existsSync(`/proc/${p}`)) continue;
    out.push(p);
    stack.push(...children(p));
  }
  return out;
}

/** A CPU/RSS snapshot of a set of process trees. */
export class TreeMeter {
  private start = new Map<number, number>();

  constructor(private readonly roots: () => readonly number[]) {}

  pids(): number[] {
    return this.roots().flatMap((r) => tree(r));
  }

  begin(): void {
    this.start = new Map();
    for (const pid of this.pids()) {
      const s = sample(pid);
      if (s) this.start.set(pid, s.cpu);
    }
  }

  /** CPU seconds used since begin() by the processes alive now (new ones count in full). */
  cpuSince(): number {
    let total = 0;
    for (const pid of this.pids()) {
      const s = sample(pid);
      if (s) total += s.cpu - (this.start.get(pid) ?? 0);
    }
    return total;
  }

  rss(): number {
    let total = 0;
    for (const pid of this.pids()) total += sample(pid)?.rss ?? 0;
    return total;
  }
}
