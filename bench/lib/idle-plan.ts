/**
 * How many server workers, load-generator processes and 127.0.0.x source addresses an idle target
 * needs on this box. Every client socket costs one descriptor in a server worker and one in a
 * generator, and each generator's clients share one source address, whose ephemeral ports are the
 * other bound.
 */
import fs from "node:fs";

/** Descriptors a process keeps for itself (IPC, logs, listeners): the server's own reserve, too. */
export const FD_RESERVE = 64;
/** Ports left unused per source address, for anything else on the box binding ephemeral ports. */
export const PORT_MARGIN = 1000;

export interface IdleLimits {
  /** The hard open-file limit, which Node raises every process's soft limit to at start. */
  openFiles: number;
  /** Ephemeral ports per source address (`ip_local_port_range`, inclusive). */
  ephemeralPorts: number;
}

export interface IdlePlan {
  /** Server workers: each holds at most openFiles - FD_RESERVE clients. */
  workers: number;
  /** Generator processes, each on its own source address. */
  generators: number;
  /** Clients per generator (the target spread evenly). */
  perGenerator: number;
}

/** Reads the limits of this box; a value that cannot be read gets the common Linux default. */
export function readIdleLimits(limitsPath = "/proc/self/limits", rangePath = "/proc/sys/net/ipv4/ip_local_port_range"): IdleLimits {
  let openFiles = 1024;
  let ephemeralPorts = 28_232;
  try {
    const m = /^Max open files\s+\d+\s+(\d+|unlimited)\s/m.exec(fs.readFileSync(limitsPath, "utf8"));
    if (m) openFiles = m[1] === "unlimited" ? 1_048_576 : Number(m[1]);
  } catch {
    /* not Linux: the default */
  }
  try {
    const [lo, hi] = fs.readFileSync(rangePath, "utf8").trim().split(/\s+/).map(Number);
    if (Number.isInteger(lo) && Number.isInteger(hi) && hi! >= lo!) ephemeralPorts = hi! - lo! + 1;
  } catch {
    /* not Linux: the default */
  }
  return { openFiles, ephemeralPorts };
}

/** The smallest fleet that holds `target` idle clients; `maxPerGenerator` caps a generator's share (its memory). */
export function planIdle(target: number, limits: IdleLimits, maxPerGenerator = Infinity): IdlePlan {
  const perWorker = Math.max(1, limits.openFiles - FD_RESERVE);
  const perGenMax = Math.max(1, Math.min(perWorker, limits.ephemeralPorts - PORT_MARGIN, maxPerGenerator));
  const generators = Math.max(1, Math.ceil(target / perGenMax));
  return {
    workers: Math.max(1, Math.ceil(target / perWorker)),
    generators,
    perGenerator: Math.ceil(target / generators),
  };
}
