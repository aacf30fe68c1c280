/** Everything one run measured, as written to bench/results/<mode>.json and rendered to markdown. */
import type { Machine } from "./lib/machine.js";
import type { CapacityRow } from "./scenarios/capacity.js";
import type { IdleRow, MaxIdleRow } from "./scenarios/idle.js";
import type { ProfileResult } from "./scenarios/profile.js";
import type { RedisAccountingRow } from "./scenarios/redis-accounting.js";
import type { RoomsRow } from "./scenarios/rooms.js";
import type { StormRow } from "./scenarios/storm.js";
import type { TrafficResult } from "./scenarios/traffic.js";
import type { Settings } from "./settings.js";

export interface VariantStatus {
  key: string;
  number: string;
  label: string;
  hosts: number;
  workersPerHost: number;
  available: boolean;
  reason?: string | undefined;
}

export interface RunResults {
  startedAt: string;
  seconds: number;
  settings: Settings;
  workers: number;
  machine: Machine;
  variants: VariantStatus[];
  traffic: TrafficResult | undefined;
  storm: StormRow[];
  idle: IdleRow[];
  maxIdle: MaxIdleRow[];
  redisAccounting: RedisAccountingRow[];
  /** Absent in results saved before the rooms scenario existed. */
  rooms?: RoomsRow[];
  /** Absent in results saved before the capacity scenario existed. */
  capacity?: CapacityRow[];
  profiles: ProfileResult[];
  skipped: string[];
  errors: string[];
}
