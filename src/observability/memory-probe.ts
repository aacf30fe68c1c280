import fs from "node:fs";
import path from "node:path";
import v8 from "node:v8";

/** Names the directory a process writes its memory probe reports to; unset (the default), no hook. */
export const MEMORY_PROBE_ENV = "SOCKFLEET_MEMORY_PROBE";
/** Set to 1 to also write a heap snapshot on each probe signal (slow: seconds per 100 MB of heap). */
export const MEMORY_PROBE_SNAPSHOT_ENV = "SOCKFLEET_MEMORY_PROBE_SNAPSHOT";

/** What one probe signal records, in `<dir>/<pid>.json`. */
export interface MemoryReport {
  pid: number;
  seq: number;
  /** Whether `gc()` ran first (the process was started with --expose-gc). */
  gc: boolean;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
  snapshot?: string;
}

/**
 * A measurement hook for benchmarks (bench/probes/idle-memory.ts), off unless SOCKFLEET_MEMORY_PROBE
 * names a directory: then SIGUSR2 runs a full GC (with --expose-gc), writes the process's memory
 * usage to `<dir>/<pid>.json` and, with SOCKFLEET_MEMORY_PROBE_SNAPSHOT=1, a heap snapshot beside
 * it. Heap figures read without a forced GC mix live and dead objects, which is why the metrics
 * endpoint is not enough to measure a per-connection slope. Only ever installed in a worker (or a
 * single-process benchmark server): on the primary SIGUSR2 drains the host.
 */
export function installMemoryProbe(env: NodeJS.ProcessEnv = process.env): boolean {
  const dir = env[MEMORY_PROBE_ENV];
  if (!dir) return false;
  const snapshots = env[MEMORY_PROBE_SNAPSHOT_ENV] === "1";
  let seq = 0;
  process.on("SIGUSR2", () => {
    seq++;
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc) {
      // Twice: the first pass's finalizers and weak callbacks can free more on the second.
      gc();
      gc();
    }
    const usage = process.memoryUsage();
    const report: MemoryReport = {
      pid: process.pid, seq, gc: gc !== undefined, heapUsed: usage.heapUsed, external: usage.external, arrayBuffers: usage.arrayBuffers, rss: usage.rss,
    };
    if (snapshots) report.snapshot = v8.writeHeapSnapshot(path.join(dir, `${process.pid}-${seq}.heapsnapshot`));
    const file = path.join(dir, `${process.pid}.json`);
    // Written whole, then renamed: the reader never sees half a report.
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(report));
    fs.renameSync(`${file}.tmp`, file);
  });
  return true;
}
