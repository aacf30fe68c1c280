/**
 * Idle connections: RSS per connection on a freshly started server (all its processes), and the
 * largest count reached by ramping in batches from several 127.0.0.x source addresses.
 */
import fs from "node:fs";
import readline from "node:readline";
import { performance } from "node:perf_hooks";
import { planIdle, readIdleLimits } from "../lib/idle-plan.js";
import { LoadGen } from "../lib/loadgen-handle.js";
import { TreeMeter } from "../lib/procstat.js";
import { RunningVariant, type VariantDef } from "../variants.js";
import { budgetLeftMs, closeGroup, connectGroup, overBudget, sleep, type BenchContext } from "./common.js";

export interface IdleRow {
  variant: string;
  connections: number;
  failed: number;
  rssBefore: number;
  rssAfter: number;
  bytesPerConnection: number;
  processes: number;
  /** The load generators' RSS growth per client (how cheap the generator is). */
  generatorBytesPerConnection: number;
}

/** Server RSS once a ramp reached `connections` (after a short settle). */
export interface IdleSample {
  connections: number;
  rss: number;
}

export interface MaxIdleRow {
  variant: string;
  reached: number;
  attempted: number;
  seconds: number;
  rss: number;
  stoppedBy: string;
  /** The fleet the target needed (bench/lib/idle-plan.ts); absent in results from before it. */
  workers?: number;
  generators?: number;
  perGenerator?: number;
  /** Server RSS after every batch, for the slopes. */
  samples?: IdleSample[];
  /** Clients that failed to connect over the whole ramp (a batch with more than 10% failed ends it). */
  failed?: number;
  /** The server's warning and error log lines during the ramp, by message (and limit), with counts. */
  serverWarnings?: string;
}

export async function runIdle(ctx: BenchContext, defs: readonly VariantDef[]): Promise<{ rows: IdleRow[]; skipped: string[] }> {
  const s = ctx.settings.idle;
  const rows: IdleRow[] = [];
  const skipped: string[] = [];
  for (const def of defs) {
    if (overBudget(ctx)) {
      skipped.push(`idle ${def.key} (time budget)`);
      continue;
    }
    // fresh generators too, so their RSS growth per client is the generator's real cost
    const gens = ctx.loadgens.map((g, i) => new LoadGen(200 + i, g.localAddress));
    const sub: BenchContext = { ...ctx, loadgens: gens };
    const genMeter = new TreeMeter(() => gens.map((g) => g.pid));
    const rv = await RunningVariant.start(def, ctx.workers);
    try {
      await Promise.all(gens.map((g) => g.request({ type: "usage" })));
      await sleep(s.settleMs);
      const before = rv.meter.rss();
      const genBefore = genMeter.rss();
      const info = await connectGroup(sub, rv, "idle", s.count, 100);
      await sleep(s.settleMs);
      const after = rv.meter.rss();
      const genAfter = genMeter.rss();
      const row: IdleRow = {
        variant: def.key, connections: info.ok, failed: info.failed, rssBefore: before, rssAfter: after,
        bytesPerConnection: info.ok > 0 ? (after - before) / info.ok : NaN, processes: rv.meter.pids().length,
        generatorBytesPerConnection: info.ok > 0 ? (genAfter - genBefore) / info.ok : NaN,
      };
      rows.push(row);
      ctx.log(`idle      ${def.key.padEnd(10)} ${info.ok} conns: RSS ${(before / 2 ** 20).toFixed(0)} -> ${(after / 2 ** 20).toFixed(0)} MiB = ${(row.bytesPerConnection / 1024).toFixed(1)} KiB/conn (generator ${(row.generatorBytesPerConnection / 1024).toFixed(1)} KiB/client)`);
      await closeGroup(sub, "idle");
    } finally {
      await rv.stop();
      await Promise.all(gens.map((g) => g.stop()));
    }
  }
  return { rows, skipped };
}

/** MemAvailable from /proc/meminfo in bytes; Infinity where it cannot be read. */
function memAvailable(): number {
  try {
    const kb = /^MemAvailable:\s+(\d+) kB/m.exec(fs.readFileSync("/proc/meminfo", "utf8"))?.[1];
    return kb === undefined ? Infinity : Number(kb) * 1024;
  } catch {
    return Infinity;
  }
}

/**
 * Least-squares slope of RSS over connections for the samples with lo <= connections <= hi, in
 * bytes per connection; NaN with fewer than two such samples.
 */
export function rssSlope(samples: readonly IdleSample[], lo: number, hi: number): number {
  const xs = samples.filter((p) => p.connections >= lo && p.connections <= hi);
  if (xs.length < 2) return NaN;
  const mx = xs.reduce((a, p) => a + p.connections, 0) / xs.length;
  const my = xs.reduce((a, p) => a + p.rss, 0) / xs.length;
  let num = 0;
  let den = 0;
  for (const p of xs) {
    num += (p.connections - mx) * (p.rss - my);
    den += (p.connections - mx) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

/**
 * Counts the warning and error lines (pino level >= 40) the variant's hosts log, by message and
 * limit name (limit hits count what their log window suppressed too): why clients were dropped.
 */
function tallyWarnings(rv: RunningVariant): Map<string, number> {
  const counts = new Map<string, number>();
  for (const h of rv.hosts) {
    const rl = readline.createInterface({ input: h.child.stdout! });
    rl.on("line", (line) => {
      if (!line.startsWith("{")) return;
      try {
        const o = JSON.parse(line) as { level?: number; msg?: string; limit?: string; suppressed?: number };
        if ((o.level ?? 0) < 40) return;
        const key = `${o.msg ?? "?"}${o.limit ? ` (${o.limit})` : ""}`;
        counts.set(key, (counts.get(key) ?? 0) + 1 + (o.suppressed ?? 0));
      } catch {
        /* not a log line */
      }
    });
  }
  return counts;
}

function describeWarnings(counts: Map<string, number>): string {
  return counts.size === 0 ? "none" : [...counts].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} x${n}`).join("; ");
}

/** Below this much available memory the ramp stops, so that the box never swaps or OOM-kills. */
const MIN_AVAILABLE_BYTES = 3 * 2 ** 30;

/**
 * Ramps idle connections on one variant until a batch fails, the cap, the time budget or the
 * memory floor. The server gets as many workers, and the ramp as many generators (each on its own
 * 127.0.0.x), as the cap needs under this box's open-file limit and ephemeral port range.
 */
export async function runMaxIdle(ctx: BenchContext, def: VariantDef): Promise<MaxIdleRow> {
  const m = ctx.settings.maxIdle!;
  const limits = readIdleLimits();
  const plan = planIdle(m.cap, limits, m.perGenerator);
  // A variant with a fixed process count (plain, rawws) keeps it; the others get the plan's workers.
  const workers = Math.max(ctx.workers, plan.workers);
  ctx.log(`max idle  ${def.key.padEnd(10)} target ${m.cap}: ${workers} workers, ${plan.generators} generators x ${plan.perGenerator} (open files ${limits.openFiles}, ${limits.ephemeralPorts} ports per source address)`);
  const gens = Array.from({ length: plan.generators }, (_, i) => new LoadGen(100 + i, `127.0.0.${10 + i}`));
  const held = gens.map(() => 0);
  const rv = await RunningVariant.start(def, workers);
  const started = performance.now();
  const samples: IdleSample[] = [];
  let reached = 0;
  let attempted = 0;
  let totalFailed = 0;
  let stoppedBy = `cap of ${m.cap}`;
  const sub: BenchContext = { ...ctx, loadgens: gens };
  const warnings = tallyWarnings(rv);
  try {
    while (reached < m.cap) {
      if (performance.now() - started > m.budgetMs || budgetLeftMs(ctx) < 10_000) {
        stoppedBy = "time budget";
        break;
      }
      const available = memAvailable();
      if (available < MIN_AVAILABLE_BYTES) {
        stoppedBy = `memory floor: ${(available / 2 ** 30).toFixed(1)} GiB available`;
        break;
      }
      // Each batch is spread over every generator with room, all connecting at once: on a shared
      // box the ramp's pace is its share of the cores, and one generator alone is a small share.
      const want = Math.min(m.batch, m.cap - reached);
      const open = held.map((h) => Math.max(0, plan.perGenerator - h));
      const room = open.reduce((a, b) => a + b, 0);
      if (room === 0) {
        stoppedBy = "every generator full";
        break;
      }
      const shares = open.map((o) => Math.min(o, Math.ceil((want * o) / room)));
      const results = await Promise.all(gens.map((g, i) => shares[i]! === 0
        ? { ok: 0, failed: 0, errors: [] as string[] }
        : g.request({
            type: "open", group: "max", host: "127.0.0.1", port: rv.hosts[0]!.port, count: shares[i]!,
            localAddress: g.localAddress, concurrency: 100, timeoutMs: 30_000,
          }, 300_000)));
      const n = shares.reduce((a, b) => a + b, 0);
      const ok = results.reduce((a, r) => a + r.ok, 0);
      const failed = results.reduce((a, r) => a + r.failed, 0);
      const errors = [...new Set(results.flatMap((r) => r.errors))];
      results.forEach((r, i) => (held[i]! += r.ok));
      attempted += n;
      reached += ok;
      await sleep(m.settleMs);
      const rss = rv.meter.rss();
      samples.push({ connections: reached, rss });
      ctx.log(`max idle  ${def.key.padEnd(10)} ${reached} connected (${((performance.now() - started) / 1000).toFixed(0)} s, RSS ${(rss / 2 ** 30).toFixed(2)} GiB, ${(available / 2 ** 30).toFixed(1)} GiB available)${failed ? `  failed ${failed}: ${errors.join("; ")}` : ""}`);
      const exit = rv.exitReport();
      if (exit !== undefined) {
        stoppedBy = `server exited: ${exit}`;
        break;
      }
      totalFailed += failed;
      if (failed > 0) ctx.log(`max idle  ${def.key.padEnd(10)} server warnings so far: ${describeWarnings(warnings)}`);
      // A limit fails batches wholesale (EMFILE, no ports); timeouts on a busy shared box fail a few.
      if (failed > Math.max(10, n / 10)) {
        stoppedBy = `${failed} of a batch of ${n} failed: ${errors[0] ?? "?"}`;
        break;
      }
    }
    const row: MaxIdleRow = {
      variant: def.key, reached, attempted, seconds: (performance.now() - started) / 1000, rss: rv.meter.rss(), stoppedBy,
      workers, generators: plan.generators, perGenerator: plan.perGenerator, samples, failed: totalFailed,
      serverWarnings: describeWarnings(warnings),
    };
    await closeGroup(sub, "max").catch(() => undefined);
    return row;
  } finally {
    await rv.stop();
    await Promise.all(gens.map((g) => g.stop()));
  }
}
