/**
 * `npm run bench [-- --quick] [--only plain,stock,...] [--workers N] [--out FILE]`
 *
 * Starts every available server variant, drives it from separate load-generator processes over
 * loopback, and writes BENCHMARKS.md (full run) or bench/results/quick.md (quick run) with tables
 * and SVG plots. Every process started is stopped by PID at the end, on error and on SIGINT.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { LoadGen } from "./lib/loadgen-handle.js";
import { describeMachine } from "./lib/machine.js";
import { installCleanup, stopAll } from "./lib/procs.js";
import { TreeMeter } from "./lib/procstat.js";
import { writeReport } from "./report/markdown.js";
import type { RunResults, VariantStatus } from "./results.js";
import { overBudget, type BenchContext } from "./scenarios/common.js";
import { runCapacity } from "./scenarios/capacity.js";
import { runIdle, runMaxIdle } from "./scenarios/idle.js";
import { runProfile } from "./scenarios/profile.js";
import { commonRate } from "./report/targets.js";
import { runRedisAccounting } from "./scenarios/redis-accounting.js";
import { runRooms } from "./scenarios/rooms.js";
import { runStorm } from "./scenarios/storm.js";
import { runTraffic } from "./scenarios/traffic.js";
import { FULL, QUICK } from "./settings.js";
import { ROOT, RunningVariant, VARIANTS, type VariantDef } from "./variants.js";

type Scenario = "traffic" | "storm" | "redis" | "idle" | "rooms" | "capacity" | "max-idle" | "profile";
const SCENARIOS: readonly Scenario[] = ["traffic", "storm", "redis", "idle", "rooms", "capacity", "max-idle", "profile"];

interface Args {
  quick: boolean;
  only: string[] | undefined;
  scenarios: Scenario[];
  subscribers: number | undefined;
  rates: number[] | undefined;
  workers: number;
  out: string | undefined;
}

function parseArgs(argv: readonly string[]): Args {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    if (i >= 0) return argv[i + 1];
    const eq = argv.find((a) => a.startsWith(`${flag}=`));
    return eq?.slice(flag.length + 1);
  };
  const known = new Set(["--quick", "--only", "--workers", "--out", "--scenarios", "--subscribers", "--rates"]);
  for (const a of argv) {
    if (a.startsWith("--") && !known.has(a.split("=")[0]!)) throw new Error(`unknown option ${a}`);
  }
  const only = value("--only")?.split(",").map((s) => s.trim()).filter(Boolean);
  const scenarios = (value("--scenarios")?.split(",").map((x) => x.trim()) ?? [...SCENARIOS]) as Scenario[];
  for (const x of scenarios) if (!SCENARIOS.includes(x)) throw new Error(`unknown scenario ${x} (${SCENARIOS.join(", ")})`);
  const subscribers = value("--subscribers");
  const rates = value("--rates");
  return {
    quick: argv.includes("--quick"),
    only,
    scenarios,
    subscribers: subscribers === undefined ? undefined : Number(subscribers),
    rates: rates?.split(",").map(Number),
    workers: Number(value("--workers") ?? os.availableParallelism()),
    out: value("--out"),
  };
}

/** `--render FILE.json [--out FILE.md]`: write the report again from saved results, running nothing. */
function render(argv: readonly string[]): number {
  const file = argv[argv.indexOf("--render") + 1];
  if (file === undefined) throw new Error("--render needs a results JSON file");
  const results = JSON.parse(fs.readFileSync(file, "utf8")) as RunResults;
  const outFlag = argv.indexOf("--out");
  const official = results.settings.mode === "full" && path.basename(file) === "full.json";
  const out = outFlag >= 0 ? argv[outFlag + 1]! : official ? path.join(ROOT, "BENCHMARKS.md") : file.replace(/\.json$/, ".md");
  writeReport(results, out, official ? path.join(ROOT, "bench", "plots") : path.join(path.dirname(file), "plots"));
  process.stderr.write(`wrote ${out}\n`);
  return 0;
}

async function main(): Promise<number> {
  if (process.argv.includes("--render")) return render(process.argv.slice(2));
  const args = parseArgs(process.argv.slice(2));
  installCleanup();
  const base = args.quick ? QUICK : FULL;
  const settings = {
    ...base,
    broadcast: { ...base.broadcast, subscribers: args.subscribers ?? base.broadcast.subscribers, rates: args.rates ?? base.broadcast.rates },
  };
  const custom = args.subscribers !== undefined || args.rates !== undefined || args.only !== undefined || args.scenarios.length < SCENARIOS.length;
  const t0 = performance.now();
  const log = (line: string): void => {
    process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${line}\n`);
  };
  const machine = describeMachine(ROOT);
  log(`sockfleet bench, ${settings.mode} run: ${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, Redis ${machine.redis}`);

  const defs = VARIANTS.filter((d) => !d.roomsOnly && (args.only === undefined ? !(args.quick && d.fullOnly) : args.only.includes(d.key)));
  const roomsOnly = VARIANTS.filter((d) => d.roomsOnly && d.unavailable() === undefined && (args.only === undefined || args.only.includes(d.key)));
  const statuses: VariantStatus[] = defs.map((d) => ({
    key: d.key, number: d.number, label: d.label, hosts: d.hosts, workersPerHost: d.workersPerHost(args.workers),
    available: d.unavailable() === undefined, reason: d.unavailable(),
  }));
  const results: RunResults = {
    startedAt: new Date().toISOString(), seconds: 0, settings, workers: args.workers, machine, variants: statuses,
    traffic: undefined, storm: [], idle: [], maxIdle: [], redisAccounting: [], profiles: [], skipped: [], errors: [],
  };

  const loadgens = Array.from({ length: settings.loadgens }, (_, i) => new LoadGen(i, `127.0.0.${2 + i}`));
  const ctx: BenchContext = {
    settings, workers: args.workers, loadgens,
    loadgenMeter: new TreeMeter(() => loadgens.map((g) => g.pid)),
    startedAt: t0, log, phaseEnd: 1,
  };
  // Each scenario may run until its share of the time budget, so that a slow one cannot crowd out the rest.
  const phase = (end: number): void => {
    ctx.phaseEnd = end;
  };

  const running: RunningVariant[] = [];
  const started: VariantDef[] = [];
  try {
    for (const def of defs) {
      const status = statuses.find((s) => s.key === def.key)!;
      if (!status.available) {
        log(`variant   ${def.key.padEnd(10)} not available: ${status.reason}`);
        continue;
      }
      try {
        running.push(await RunningVariant.start(def, args.workers));
        started.push(def);
        log(`variant   ${def.key.padEnd(10)} ready on port ${running.at(-1)!.hosts.map((h) => h.port).join(", ")}`);
      } catch (err) {
        status.available = false;
        status.reason = `failed to start: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`;
        log(`variant   ${def.key.padEnd(10)} not available: ${status.reason}`);
      }
    }

    const want = (x: Scenario): boolean => args.scenarios.includes(x);
    phase(0.5);
    if (want("traffic")) {
      results.traffic = await runTraffic(ctx, running);
      results.skipped.push(...results.traffic.skipped);
    }
    phase(0.6);
    if (want("storm")) {
      const storm = await runStorm(ctx, running);
      results.storm = storm.rows;
      results.skipped.push(...storm.skipped);
    }
    for (const rv of running.splice(0)) await rv.stop();

    phase(0.64);
    if (want("redis")) {
      const acct = await runRedisAccounting(ctx, started);
      results.redisAccounting = acct.rows;
      results.skipped.push(...acct.skipped);
    }
    phase(0.76);
    if (want("idle")) {
      const idle = await runIdle(ctx, started);
      results.idle = idle.rows;
      results.skipped.push(...idle.skipped);
    }
    phase(0.82);
    // Left out of quick runs (it starts each variant afresh: about 25 s) unless named with --scenarios.
    if (want("rooms") && (!args.quick || args.scenarios.length < SCENARIOS.length)) {
      const rooms = await runRooms(ctx, [...started, ...roomsOnly]);
      results.rooms = rooms.rows;
      results.skipped.push(...rooms.skipped);
    }
    phase(0.9);
    // Also started afresh per point (about 3 minutes in a full run): quick runs only when named.
    if (want("capacity") && (!args.quick || args.scenarios.length < SCENARIOS.length)) {
      const capacity = await runCapacity(ctx, [...started, ...roomsOnly]);
      results.capacity = capacity.rows;
      results.skipped.push(...capacity.skipped);
    }
    phase(0.92);
    if (want("profile") && (!args.quick || args.scenarios.length < SCENARIOS.length)) {
      const rate = commonRate(results, ["sockfleet", "stock"]) ?? settings.broadcast.rates[1]!;
      // sf-base (a baseline build, when named) too: the before and after of a change side by side.
      for (const key of ["sockfleet", "sf-base", "stock"]) {
        const def = started.find((d) => d.key === key);
        if (def && !overBudget(ctx)) results.profiles.push(await runProfile(ctx, def, rate, path.join(ROOT, "bench", "results", "profiles", key)));
      }
    }
    phase(1);
    if (want("max-idle") && settings.maxIdle !== undefined) {
      // sockfleet, then the stock recipe at the same counts for comparison, each bounded in time
      for (const key of ["sockfleet", "stock"]) {
        const target = started.find((d) => d.key === key);
        if (target && !overBudget(ctx)) results.maxIdle.push(await runMaxIdle(ctx, target));
      }
    }
  } catch (err) {
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    results.errors.push(text);
    log(`ERROR ${text}`);
  } finally {
    for (const rv of running) await rv.stop();
    await Promise.all(loadgens.map((g) => g.stop()));
    await stopAll();
  }

  results.seconds = (performance.now() - t0) / 1000;
  const resultsDir = path.join(ROOT, "bench", "results");
  fs.mkdirSync(resultsDir, { recursive: true });
  // Only a complete full run writes the checked-in BENCHMARKS.md; partial or quick runs go to bench/results/.
  const official = !args.quick && !custom;
  const name = official ? "full" : args.quick && !custom ? "quick" : "custom";
  fs.writeFileSync(path.join(resultsDir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  const out = args.out ?? (official ? path.join(ROOT, "BENCHMARKS.md") : path.join(resultsDir, args.quick ? "quick.md" : "custom.md"));
  const plotsDir = official ? path.join(ROOT, "bench", "plots") : path.join(resultsDir, "plots");
  writeReport(results, out, plotsDir);
  log(`wrote ${path.relative(ROOT, out)} in ${results.seconds.toFixed(0)} s${results.errors.length ? ` with ${results.errors.length} error(s)` : ""}`);
  return results.errors.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await stopAll();
    process.exit(1);
  },
);
