/** Scenario sizes for the quick (smoke, about a minute) and full (about 30 minutes, at most 35) runs. */
export interface Settings {
  mode: "quick" | "full";
  loadgens: number;
  broadcast: {
    subscribers: number;
    senders: number;
    /** Offered broadcasts per second; steps of about sqrt(2) so that half a rate is two steps back. */
    rates: number[];
    stepMs: number;
    drainMs: number;
    payloadBytes: number;
    /** Unmeasured traffic per variant before the sweep (JIT, buffers, pools). */
    warmupMs: number;
  };
  rooms: { roomSize: number; rates: number[]; stepMs: number };
  /**
   * The rooms scenario (scenarios/rooms.ts): rooms of `roomSize` whose members all sit on one worker
   * (1 host x 3 workers) or one host (`hosts` x 1 worker, sharing one redis-server), and the CPU of
   * a worker or host holding `clients`' share of connections but no member, at `rate` room
   * messages per second for `durationMs`, against an idle window of the same length.
   */
  roomsIdle: { clients: number; roomSize: number; rate: number; durationMs: number; hosts: number; multiHost: boolean };
  storm: { websocket: number; polling: number; concurrency: number; timeoutMs: number };
  idle: { count: number; settleMs: number };
  /**
   * Largest idle count: ramp in batches until a failure, the cap or the time budget, with as many
   * server workers and generators as the cap needs (bench/lib/idle-plan.ts); perGenerator caps a
   * generator's share, settleMs is the wait before the RSS sample after each batch.
   */
  maxIdle: { cap: number; batch: number; perGenerator: number; settleMs: number; budgetMs: number } | undefined;
  redisAccounting: { clients: number; broadcasts: number; rate: number };
  /**
   * The capacity scenario (scenarios/capacity.ts): each of `variants` on 1, 2 and 4 hosts, broadcasts
   * to a few clients per worker at each of `rates` for `windowMs`, after an idle window as long.
   */
  capacity: { variants: string[]; rates: number[]; windowMs: number };
  /** Before each step, wait up to this long for the machine to fall below 15% busy. */
  idleWaitMs: number;
  /** How long a client may take to connect before it counts as failed. */
  connectTimeoutMs: number;
  /** Stop starting new steps after this much wall time. */
  budgetMs: number;
}

export const QUICK: Settings = {
  mode: "quick",
  loadgens: 2,
  broadcast: { subscribers: 100, senders: 4, rates: [100, 400], stepMs: 1000, drainMs: 1000, payloadBytes: 32, warmupMs: 300 },
  rooms: { roomSize: 5, rates: [500], stepMs: 1000 },
  roomsIdle: { clients: 120, roomSize: 5, rate: 400, durationMs: 1200, hosts: 3, multiHost: false },
  storm: { websocket: 100, polling: 40, concurrency: 20, timeoutMs: 5000 },
  idle: { count: 500, settleMs: 400 },
  maxIdle: undefined,
  redisAccounting: { clients: 10, broadcasts: 20, rate: 100 },
  capacity: { variants: ["sf-bridge", "sf-adapter"], rates: [57, 400], windowMs: 1500 },
  idleWaitMs: 500,
  connectTimeoutMs: 5000,
  budgetMs: 110_000,
};

export const FULL: Settings = {
  mode: "full",
  loadgens: 2,
  broadcast: {
    subscribers: 1000,
    senders: 10,
    rates: [10, 14, 20, 28, 40, 57, 80, 113, 160, 226],
    stepMs: 2500,
    drainMs: 2000,
    payloadBytes: 64,
    warmupMs: 2000,
  },
  rooms: { roomSize: 5, rates: [1000, 4000], stepMs: 2500 },
  roomsIdle: { clients: 300, roomSize: 5, rate: 1000, durationMs: 4000, hosts: 4, multiHost: true },
  storm: { websocket: 2000, polling: 300, concurrency: 100, timeoutMs: 10_000 },
  idle: { count: 3000, settleMs: 1500 },
  maxIdle: { cap: 100_000, batch: 5000, perGenerator: 18_000, settleMs: 1000, budgetMs: 900_000 },
  redisAccounting: { clients: 100, broadcasts: 200, rate: 100 },
  capacity: { variants: ["sf-bridge", "sf-bridge-norec", "sf-adapter"], rates: [57, 400], windowMs: 2500 },
  idleWaitMs: 4000,
  connectTimeoutMs: 10_000,
  // 14 minutes left the 4-host rooms comparisons, most of the capacity scenario and the 100k ramp
  // out (2026-12-01): every scenario needs about half an hour on 2 cores.
  budgetMs: 35 * 60_000,
};
