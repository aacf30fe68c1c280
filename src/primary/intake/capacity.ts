import fs from "node:fs";
import { Gauge, type Registry } from "prom-client";
import type { Config } from "../../config/schema";
import type { Logger } from "../../observability/logger";

/** Descriptors each process keeps for its own files: IPC and data channels, logs, Redis, static files. */
export const FD_RESERVE = 64;
/** Assumed soft open-file limit when /proc/self/limits cannot be read (the usual Linux default). */
export const FALLBACK_OPEN_FILES = 1024;

/**
 * The soft "Max open files" limit of this process (workers inherit it), or the fallback, and the
 * hard one. There is nothing to raise here: Node itself raises its soft limit to the hard one as
 * it starts (POSIX platforms), so a soft limit still below the hard one means that failed.
 */
export function openFileLimit(limitsPath = "/proc/self/limits"): { limit: number; hard?: number; source: string } {
  try {
    const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)\s/m.exec(fs.readFileSync(limitsPath, "utf8"));
    if (match && match[1] !== "unlimited") return { limit: Number(match[1]), hard: match[2] === "unlimited" ? Infinity : Number(match[2]), source: limitsPath };
  } catch {
    // Not Linux, or /proc not mounted: assume the common default.
  }
  return { limit: FALLBACK_OPEN_FILES, source: "fallback" };
}

export interface IntakeCapacity {
  /** Connections the host holds at once; 0 means no limit. */
  maxConnections: number;
  /** Connections the primary lets wait for their first request head at once. */
  maxPendingHeads: number;
  /** How the values were found, for the start-up log line. */
  openFileLimit: number;
  /** The hard limit, where known: what the soft one should have been raised to at start. */
  hardOpenFileLimit?: number;
  openFileLimitSource: string;
  derived: boolean;
  /** What the descriptors allow (the default of maxConnections), also when maxConnections is set. */
  capacity: number;
}

/**
 * The connection bounds that follow from the open-file limit L (one descriptor per connection):
 * - every worker can hold L - FD_RESERVE client connections, so the host holds at most
 *   workers x (L - FD_RESERVE); that is the default of --max-connections;
 * - connections waiting for their first request head (and those being handed over) are held by the
 *   primary alone, so at most L - FD_RESERVE of them can wait at once, whatever --max-pending-heads
 *   says: beyond that the primary's accept() would fail with EMFILE.
 */
export function intakeCapacity(
  settings: { workers: number; maxConnections?: number; maxPendingHeads: number },
  files = openFileLimit(),
): IntakeCapacity {
  const perProcess = Math.max(1, files.limit - FD_RESERVE);
  const capacity = settings.workers * perProcess;
  return {
    maxConnections: settings.maxConnections ?? capacity,
    maxPendingHeads: Math.min(settings.maxPendingHeads, perProcess),
    openFileLimit: files.limit,
    hardOpenFileLimit: files.hard,
    openFileLimitSource: files.source,
    derived: settings.maxConnections === undefined,
    capacity,
  };
}

/** `sockfleet_connection_capacity`: what the descriptors let this host's workers hold, to alert on before EMFILE does. */
export function registerCapacityMetric(registry: Registry, capacity: IntakeCapacity): void {
  new Gauge({
    name: "sockfleet_connection_capacity",
    help: `Client connections this host's workers can hold with their open-file limit: workers x (soft open-file limit - ${FD_RESERVE}).`,
    registers: [registry],
  }).set(capacity.capacity);
}

/** The start-up line with the effective connection limits, and a warning when they exceed the descriptors. */
export function logCapacity(logger: Logger, capacity: IntakeCapacity, config: Config): void {
  logger.info(
    {
      maxConnections: capacity.maxConnections,
      connectionCapacity: capacity.capacity,
      maxConnectionsFrom: capacity.derived ? `workers x (open-file limit - ${FD_RESERVE})` : "setting",
      openFileLimit: capacity.openFileLimit,
      openFileLimitSource: capacity.openFileLimitSource,
      maxPendingHeads: capacity.maxPendingHeads,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      trustedProxies: config.trustedProxies,
      headTimeout: config.headTimeout,
      maxHeadBytes: config.maxHeadBytes,
    },
    "connection limits",
  );
  if (capacity.hardOpenFileLimit !== undefined && capacity.openFileLimit < capacity.hardOpenFileLimit) {
    logger.warn(
      { openFileLimit: capacity.openFileLimit, hardOpenFileLimit: capacity.hardOpenFileLimit },
      "the soft open-file limit is below the hard one (Node raises it at start; here that failed): connection capacity follows the soft limit",
    );
  }
  if (capacity.maxConnections === 0 || capacity.maxConnections > capacity.capacity) {
    logger.warn(
      { maxConnections: capacity.maxConnections, capacity: capacity.capacity, openFileLimit: capacity.openFileLimit },
      "max-connections is off or above what the open-file limit lets the workers hold (workers x (limit - 64)): past that, connections fail with EMFILE instead of being refused",
    );
  }
}
