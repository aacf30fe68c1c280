import fs from "node:fs";

/** Resident set size of process `pid` in bytes, from /proc (Linux), or undefined if it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

/** Resident set size of a live process `pid` in bytes; throws if it is gone. */
export function rssOf(pid: number): number {
  const bytes = rssBytes(pid);
  if (bytes === undefined) throw new Error(`no VmRSS for process ${pid}`);
  return bytes;
}

export const MB = 1_000_000;

export const mb = (bytes: number | undefined): string => (bytes === undefined ? "gone" : `${(bytes / 1024 / 1024).toFixed(0)} MB`);

/** CPU time (user + system) process `pid` has used so far, in seconds, from /proc (Linux). */
export function cpuSeconds(pid: number): number | undefined {
  try {
    // Fields after the command name (which may contain spaces), see proc(5): utime and stime are 14 and 15.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
