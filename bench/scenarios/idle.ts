/**
 * Idle connections: RSS per connection on a freshly started server (all its processes), and the
 * largest count reached by ramping in batches from several 127.0.0.x source addresses.
 */
import { performance } from "node:perf_hooks";
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

export interface MaxIdleRow {
  variant: string;
  reached: number;
  attempted: number;
  seconds: number;
  rss: number;
  stoppedBy: string;
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

/** Ramps idle connections on one variant until a batch fails, the cap, or the time budget. */
export async function runMaxIdle(ctx: BenchContext, def: VariantDef): Promise<MaxIdleRow> {
  const m = ctx.settings.maxIdle!;
  const gensNeeded = Math.ceil(m.cap / m.perGenerator);
  const gens = Array.from({ length: gensNeeded }, (_, i) => new LoadGen(100 + i, `127.0.0.${10 + i}`));
  const rv = await RunningVariant.start(def, ctx.workers);
  const started = performance.now();
  let reached = 0;
  let attempted = 0;
  let stoppedBy = `cap of ${m.cap}`;
  const sub: BenchContext = { ...ctx, loadgens: gens };
  try {
    while (reached < m.cap) {
      if (performance.now() - started > m.budgetMs || budgetLeftMs(ctx) < 10_000) {
        stoppedBy = "time budget";
        break;
      }
      // fill generators in order, each up to perGenerator connections
      const want = Math.min(m.batch, m.cap - reached);
      const genIndex = Math.floor(reached / m.perGenerator);
      const room = m.perGenerator - (reached % m.perGenerator);
      const n = Math.min(want, room);
      const g = gens[genIndex]!;
      const r = await g.request({
        type: "open", group: "max", host: "127.0.0.1", port: rv.hosts[0]!.port, count: n,
        localAddress: g.localAddress, concurrency: 200, timeoutMs: 15_000,
      }, 300_000);
      attempted += n;
      reached += r.ok;
      ctx.log(`max idle  ${def.key.padEnd(10)} ${reached} connected (${((performance.now() - started) / 1000).toFixed(0)} s, RSS ${(rv.meter.rss() / 2 ** 30).toFixed(2)} GiB)${r.failed ? `  failed ${r.failed}: ${r.errors.join("; ")}` : ""}`);
      const exit = rv.exitReport();
      if (exit !== undefined) {
        stoppedBy = `server exited: ${exit}`;
        break;
      }
      if (r.failed > 0) {
        stoppedBy = `${r.failed} of a batch of ${n} failed: ${r.errors[0] ?? "?"}`;
        break;
      }
    }
    await sleep(1000);
    const row: MaxIdleRow = { variant: def.key, reached, attempted, seconds: (performance.now() - started) / 1000, rss: rv.meter.rss(), stoppedBy };
    await closeGroup(sub, "max").catch(() => undefined);
    return row;
  } finally {
    await rv.stop();
    await Promise.all(gens.map((g) => g.stop()));
  }
}
