/**
 * Measurements for the README's capacity model: what one broadcast costs Redis, and each host,
 * as the fleet grows in hosts and the broadcast rate grows, for each hosts-tier mode. Each point
 * starts the variant afresh on its own redis-server (so INFO's counters are the variant's alone),
 * holds a few clients per worker (so delivery to clients, which the traffic scenario measures,
 * stays small next to the Redis work), and sends broadcasts to everyone at fixed rates, each
 * window preceded by an idle window of the same length: Redis CPU beyond idle, per broadcast, and
 * the time Redis spent in each command (INFO commandstats) say where its cost goes.
 */
import { performance } from "node:perf_hooks";
import { RedisServer, type RedisCommandStats } from "../lib/redis.js";
import { RunningVariant, type VariantDef } from "../variants.js";
import { closeGroup, connectGroup, groupReceived, overBudget, sleep, type BenchContext } from "./common.js";

export interface CapacityRow {
  variant: string;
  hosts: number;
  workersPerHost: number;
  /** Offered broadcasts per second (to every client). */
  rate: number;
  sent: number;
  clients: number;
  loss: number;
  /** Redis CPU (INFO used_cpu_sys + used_cpu_user) beyond its idle rate, per broadcast. */
  redisCpuUs: number;
  /** Redis CPU in the idle window before, cores (heartbeats, session mirror, blocked reads timing out). */
  redisIdleCores: number;
  /** Microseconds Redis spent inside each command per broadcast (commandstats), largest first. */
  commandsUs: Array<[command: string, usPerBroadcast: number, callsPerBroadcast: number]>;
  /** All hosts' processes, CPU beyond idle per broadcast, per host. */
  hostCpuUsPerHost: number;
}

/** The layouts measured: every variant at each host count, `workersPerHost` workers each. */
const HOSTS = [1, 2, 4];
const WORKERS_PER_HOST = 2;
const CLIENTS_PER_WORKER = 4;
/** A sender socket stays under sockfleet's default --max-events-per-second (100). */
const RATE_PER_SENDER = 50;

function commandDelta(before: RedisCommandStats, after: RedisCommandStats, sent: number): CapacityRow["commandsUs"] {
  const out: CapacityRow["commandsUs"] = [];
  for (const [command, a] of after) {
    const b = before.get(command) ?? { calls: 0, usec: 0 };
    const calls = a.calls - b.calls;
    if (calls <= 0 || command === "info" || command === "config|resetstat") continue;
    out.push([command, (a.usec - b.usec) / sent, calls / sent]);
  }
  return out.sort((x, y) => y[1] - x[1]);
}

async function measurePoint(ctx: BenchContext, rv: RunningVariant, redis: RedisServer, def: VariantDef, hosts: number, rate: number, clients: number, group: string): Promise<CapacityRow> {
  const windowMs = ctx.settings.capacity.windowMs;
  // idle window: the same processes and clients, no traffic
  const idle0 = await redis.counters();
  rv.meter.begin();
  const i0 = performance.now();
  await sleep(windowMs);
  const idleWall = (performance.now() - i0) / 1000;
  const idle1 = await redis.counters();
  const hostIdleCores = rv.meter.cpuSince() / idleWall;
  const redisIdleCores = (idle1.cpu - idle0.cpu) / idleWall;

  await Promise.all(ctx.loadgens.map((g) => g.request({ type: "reset", group })));
  const stats0 = await redis.commandStats();
  const before = await redis.counters();
  rv.meter.begin();
  const t0 = performance.now();
  const active = ctx.loadgens.map((_, i) => i);
  const senders = Math.max(1, Math.ceil(rate / RATE_PER_SENDER / active.length));
  const sends = await Promise.all(active.map((i) => ctx.loadgens[i]!.request({
    type: "send", group, kind: "broadcast", rate: rate / active.length, durationMs: windowMs,
    senders, payloadBytes: 32, prefix: "", roomCount: 1, roomOffset: 0,
  })));
  const sent = sends.reduce((a, x) => a + x.sent, 0);
  const expected = sent * clients;
  let rep = await groupReceived(ctx, group);
  const drain0 = performance.now();
  while (rep.received < expected && performance.now() - drain0 < 3000) {
    await sleep(50);
    rep = await groupReceived(ctx, group);
  }
  const wall = (performance.now() - t0) / 1000;
  const after = await redis.counters();
  const stats1 = await redis.commandStats();
  const hostCpu = rv.meter.cpuSince() - hostIdleCores * wall;
  return {
    variant: def.key, hosts, workersPerHost: WORKERS_PER_HOST, rate, sent, clients,
    loss: expected > 0 ? 1 - Math.min(rep.received, expected) / expected : 0,
    redisCpuUs: sent > 0 ? ((after.cpu - before.cpu - redisIdleCores * wall) / sent) * 1e6 : NaN,
    redisIdleCores,
    commandsUs: commandDelta(stats0, stats1, sent),
    hostCpuUsPerHost: sent > 0 ? (hostCpu / sent / hosts) * 1e6 : NaN,
  };
}

export async function runCapacity(ctx: BenchContext, defs: readonly VariantDef[]): Promise<{ rows: CapacityRow[]; skipped: string[] }> {
  const rows: CapacityRow[] = [];
  const skipped: string[] = [];
  const { rates, variants } = ctx.settings.capacity;
  for (const key of variants) {
    const def = defs.find((d) => d.key === key);
    if (!def) {
      skipped.push(`capacity ${key} (not available)`);
      continue;
    }
    for (const hosts of HOSTS) {
      if (overBudget(ctx)) {
        skipped.push(`capacity ${key} ${hosts} hosts (time budget)`);
        continue;
      }
      const redis = await RedisServer.start();
      const shaped: VariantDef = { ...def, hosts, workersPerHost: () => WORKERS_PER_HOST };
      let rv: RunningVariant | undefined;
      const group = `cap-${key}-${hosts}`;
      try {
        rv = await RunningVariant.start(shaped, WORKERS_PER_HOST, redis.url);
        const info = await connectGroup(ctx, rv, group, hosts * WORKERS_PER_HOST * CLIENTS_PER_WORKER);
        if (info.failed > 0) throw new Error(`${info.failed} clients failed to connect: ${info.errors.join("; ")}`);
        await sleep(1000); // adapters and bridges find each other (heartbeats)
        for (const rate of rates) {
          if (overBudget(ctx)) break;
          const row = await measurePoint(ctx, rv, redis, def, hosts, rate, info.ok, group);
          rows.push(row);
          const top = row.commandsUs.slice(0, 3).map(([c, us, n]) => `${c} ${us.toFixed(1)} us (${n.toFixed(2)}x)`).join(", ");
          ctx.log(`capacity  ${key.padEnd(10)} ${hosts}x${WORKERS_PER_HOST} at ${rate}/s: Redis ${row.redisCpuUs.toFixed(1)} us/broadcast [${top}], host ${row.hostCpuUsPerHost.toFixed(0)} us/broadcast, loss ${(row.loss * 100).toFixed(2)}%`);
        }
        await closeGroup(ctx, group);
      } catch (err) {
        skipped.push(`capacity ${key} ${hosts} hosts: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        await rv?.stop();
        await redis.stop();
      }
    }
  }
  return { rows, skipped };
}
