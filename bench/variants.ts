/**
 * The servers under test. Each host of a variant is one process tree started from a command line;
 * every variant prints the same `"msg":"ready"` line with its port.
 */
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { spawnTracked, stopTree, waitReady } from "./lib/procs.js";
import { TreeMeter } from "./lib/procstat.js";
import { RedisServer } from "./lib/redis.js";

export const ROOT = path.resolve(__dirname, "..", "..");
const SERVERS = path.join(__dirname, "servers");
export const SOCKFLEET_CLI = path.join(ROOT, "dist", "src", "cli.js");

export type VariantKey = "plain" | "stock" | "seed" | "sockfleet" | "sf-norec" | "sf-base" | "sf-bridge" | "sf-bridge-norec" | "sf-adapter" | "seed-2h" | "rawws"
  | "sharded-static" | "sharded-dynamic" | "redis-streams";

/**
 * `BENCH_BASELINE_CLI=/path/to/other/dist/src/cli.js`: another build of sockfleet (say, main before
 * a change) run as its own variant, `sf-base`, so that a change is measured against it in the same
 * run on the same noisy machine instead of across runs. `BENCH_BASELINE_ARGS="--recovery off"`
 * (space-separated) adds flags to it, to compare it with `sf-norec`.
 */
const BASELINE_CLI = process.env.BENCH_BASELINE_CLI;
const BASELINE_ARGS = (process.env.BENCH_BASELINE_ARGS ?? "").split(" ").filter((arg) => arg !== "");

export interface VariantDef {
  key: VariantKey;
  /** The issue's numbering (1-7); the seed recipe on 2 hosts is an extra reference, 3b. */
  number: string;
  label: string;
  hosts: number;
  /** Processes per host that serve clients (workers). */
  workersPerHost: (workers: number) => number;
  redis: boolean;
  /** Left out of quick runs (unless named with --only), to keep them near a minute. */
  fullOnly?: boolean;
  /** Run only by the rooms scenario (scenarios/rooms.ts), which starts it in its own layouts. */
  roomsOnly?: boolean;
  /** Serves the polling transport (the raw ws ceiling does not). */
  polling: boolean;
  /** Why the variant cannot run here, or undefined. */
  unavailable: () => string | undefined;
  command: (o: { workers: number; redisUrl: string | undefined; hostName: string }) => string[];
}

function sockfleetMissing(): string | undefined {
  return fs.existsSync(SOCKFLEET_CLI) ? undefined : "sockfleet CLI (dist/src/cli.js) not built yet";
}

let helpText: string | undefined;
/** The CLI's --help, read once: tells which flags this build of sockfleet has. */
function sockfleetHelp(): string {
  if (helpText === undefined) {
    try {
      helpText = execFileSync(process.execPath, [SOCKFLEET_CLI, "--help"], { encoding: "utf8", timeout: 10_000 });
    } catch (err) {
      helpText = String((err as { stdout?: unknown }).stdout ?? "");
    }
  }
  return helpText;
}

function redisModeMissing(): string | undefined {
  return sockfleetHelp().includes("--redis-mode") ? undefined : "this sockfleet build has no --redis-mode flag yet";
}

function redisMissing(): string | undefined {
  return RedisServer.available() ? undefined : "redis-server not installed";
}

// --max-connections-per-ip 0: a benchmark's load generators are a few 127.0.0.x addresses holding
// thousands of clients each, which the per-address limit (default 1000) exists to refuse.
const sockfleet = (extra: (redisUrl: string | undefined) => string[], cli = SOCKFLEET_CLI) => (o: { workers: number; redisUrl: string | undefined; hostName: string }) => [
  cli, "--port", "0", "--host", "127.0.0.1", "--workers", String(o.workers), "--host-id", o.hostName,
  "--max-connections-per-ip", "0",
  // Publishers in the benchmark send hundreds of events per second by design: no per-socket event rate limit.
  "--max-events-per-second", "0",
  ...extra(o.redisUrl),
];

export const VARIANTS: readonly VariantDef[] = [
  {
    key: "plain", number: "1", label: "plain Socket.IO, 1 process", hosts: 1, workersPerHost: () => 1, redis: false, polling: true,
    unavailable: () => undefined,
    command: () => [path.join(SERVERS, "plain.js"), "--port", "0", "--host", "127.0.0.1"],
  },
  {
    key: "stock", number: "2", label: "stock: cluster + sticky + cluster-adapter", hosts: 1, workersPerHost: (w) => w, redis: false, polling: true,
    unavailable: () => undefined,
    command: (o) => [path.join(SERVERS, "cluster-recipe.js"), "--port", "0", "--host", "127.0.0.1", "--workers", String(o.workers), "--adapter", "cluster"],
  },
  {
    key: "seed", number: "3", label: "seed: cluster + sticky + redis-adapter", hosts: 1, workersPerHost: (w) => w, redis: true, polling: true,
    unavailable: redisMissing,
    command: (o) => [path.join(SERVERS, "cluster-recipe.js"), "--port", "0", "--host", "127.0.0.1", "--workers", String(o.workers), "--adapter", "redis", "--redis", o.redisUrl ?? ""],
  },
  {
    key: "sockfleet", number: "4", label: "sockfleet, 1 host", hosts: 1, workersPerHost: (w) => w, redis: false, polling: true,
    unavailable: sockfleetMissing,
    command: sockfleet(() => []),
  },
  {
    // Recovery off: no offset round trip through the primary, no replay log. How much of the
    // distance to stock is the price of recovery, and how much the rest of the delivery path.
    key: "sf-norec", number: "4b", label: "sockfleet, 1 host, --recovery off", hosts: 1, workersPerHost: (w) => w, redis: false, polling: true,
    unavailable: sockfleetMissing,
    command: sockfleet(() => ["--recovery", "off"]),
  },
  // Listed only when BENCH_BASELINE_CLI names a build, so that ordinary reports do not show it.
  ...(BASELINE_CLI === undefined
    ? []
    : [{
        key: "sf-base", number: "4c", label: "sockfleet, baseline build (BENCH_BASELINE_CLI)", hosts: 1, workersPerHost: (w: number) => w, redis: false, polling: true,
        unavailable: () => (fs.existsSync(BASELINE_CLI) ? undefined : `${BASELINE_CLI} not found`),
        command: sockfleet(() => BASELINE_ARGS, BASELINE_CLI),
      } satisfies VariantDef]),
  {
    key: "sf-bridge", number: "5", label: "sockfleet, 2 hosts, bridge mode", hosts: 2, workersPerHost: (w) => w, redis: true, polling: true,
    unavailable: () => sockfleetMissing() ?? redisMissing() ?? redisModeMissing(),
    command: sockfleet((url) => ["--redis", url ?? "", "--redis-mode", "bridge"]),
  },
  {
    // Room broadcasts routed to the hosts holding members (tiers/redis/host-routes.ts), which
    // needs pub/sub: with recovery on they go through the shared log every host reads.
    key: "sf-bridge-norec", number: "5b", label: "sockfleet, 2 hosts, bridge mode, --recovery off", hosts: 2, workersPerHost: (w) => w, redis: true, polling: true, roomsOnly: true,
    unavailable: () => sockfleetMissing() ?? redisMissing() ?? redisModeMissing(),
    command: sockfleet((url) => ["--redis", url ?? "", "--redis-mode", "bridge", "--recovery", "off"]),
  },
  {
    key: "sf-adapter", number: "6", label: "sockfleet, 2 hosts, adapter mode", hosts: 2, workersPerHost: (w) => w, redis: true, polling: true,
    unavailable: () => sockfleetMissing() ?? redisMissing() ?? redisModeMissing(),
    command: sockfleet((url) => ["--redis", url ?? "", "--redis-mode", "adapter"]),
  },
  {
    key: "seed-2h", number: "3b", label: "seed recipe, 2 hosts", hosts: 2, workersPerHost: (w) => w, redis: true, polling: true, fullOnly: true,
    unavailable: redisMissing,
    command: (o) => [path.join(SERVERS, "cluster-recipe.js"), "--port", "0", "--host", "127.0.0.1", "--workers", String(o.workers), "--adapter", "redis", "--redis", o.redisUrl ?? ""],
  },
  // The other Redis recipes, for the rooms scenario: the sharded redis-adapter (Redis 7 sharded
  // pub/sub; "dynamic" subscribes a server to a room's channel only while it holds a member) and
  // the official Redis Streams adapter (with connection state recovery).
  ...(["sharded-static", "sharded-dynamic", "redis-streams"] as const).map((key, i) => ({
    key, number: `3${"cde"[i]}`, hosts: 1, workersPerHost: (w: number) => w, redis: true, polling: true, roomsOnly: true,
    label: key === "redis-streams" ? "cluster + sticky + @socket.io/redis-streams-adapter (recovery on)" : `cluster + sticky + sharded redis-adapter (${key.slice(8)})`,
    unavailable: redisMissing,
    command: (o: { workers: number; redisUrl: string | undefined }) => [path.join(SERVERS, "cluster-recipe.js"), "--port", "0", "--host", "127.0.0.1", "--workers", String(o.workers), "--adapter", key === "redis-streams" ? key : `redis-${key}`, "--redis", o.redisUrl ?? ""],
  } satisfies VariantDef)),
  {
    key: "rawws", number: "7", label: "raw ws broadcast (ceiling)", hosts: 1, workersPerHost: () => 1, redis: false, polling: false,
    unavailable: () => undefined,
    command: () => [path.join(SERVERS, "rawws.js"), "--port", "0", "--host", "127.0.0.1"],
  },
];

export interface HostHandle {
  name: string;
  port: number;
  child: ChildProcess;
  /** The last few KB the host wrote (stdout and stderr), to explain an unexpected exit. */
  tail: string[];
}

const TAIL_LINES = 12;

function keepTail(child: ChildProcess, tail: string[]): void {
  const push = (d: Buffer): void => {
    for (const line of d.toString().split("\n")) {
      if (line.trim() === "") continue;
      tail.push(line.slice(0, 400));
      if (tail.length > TAIL_LINES) tail.shift();
    }
  };
  child.stdout?.on("data", push);
  child.stderr?.on("data", push);
}

/** One started variant: its hosts, its private redis-server if any, and a meter over all its processes. */
export class RunningVariant {
  readonly meter: TreeMeter;

  private constructor(
    readonly def: VariantDef,
    readonly workers: number,
    readonly hosts: HostHandle[],
    readonly redis: RedisServer | undefined,
  ) {
    this.meter = new TreeMeter(() => this.hosts.map((h) => h.child.pid ?? -1).filter((p) => p > 0));
  }

  get totalWorkers(): number {
    return this.def.hosts * this.def.workersPerHost(this.workers);
  }

  /** `nodeArgs` go before the script (e.g. --cpu-prof); cluster workers inherit them as execArgv. */
  static async start(def: VariantDef, workers: number, redisUrlOverride?: string, nodeArgs: readonly string[] = []): Promise<RunningVariant> {
    const redis = def.redis && redisUrlOverride === undefined ? await RedisServer.start() : undefined;
    const redisUrl = redisUrlOverride ?? redis?.url;
    const hosts: HostHandle[] = [];
    try {
      for (let h = 0; h < def.hosts; h++) {
        const name = `host-${String.fromCharCode(97 + h)}`;
        const child = spawnTracked(process.execPath, [...nodeArgs, ...def.command({ workers, redisUrl, hostName: name })], { BENCH_HOST_NAME: name });
        const handle: HostHandle = { name, port: 0, child, tail: [] };
        keepTail(child, handle.tail);
        hosts.push(handle);
        const ready = await waitReady(child, 20_000, `${def.key} ${name}`);
        handle.port = ready.port;
      }
    } catch (err) {
      await Promise.all(hosts.map((h) => stopTree(h.child)));
      await redis?.stop();
      throw err;
    }
    return new RunningVariant(def, workers, hosts, redis);
  }

  /** Why a host is gone: its exit code or signal and its last log lines; undefined while all run. */
  exitReport(): string | undefined {
    const dead = this.hosts.find((h) => h.child.exitCode !== null || h.child.signalCode !== null);
    if (!dead) return undefined;
    const errors = dead.tail.filter((l) => /"level":(50|60)|error|Error/.test(l)).slice(-3);
    return `${dead.name} exited (${dead.child.exitCode ?? dead.child.signalCode})${errors.length ? `: ${errors.join(" | ")}` : ""}`;
  }

  alive(): boolean {
    return this.hosts.every((h) => h.child.exitCode === null && h.child.signalCode === null);
  }

  async stop(): Promise<void> {
    await Promise.all(this.hosts.map((h) => stopTree(h.child)));
    await this.redis?.stop();
  }
}
