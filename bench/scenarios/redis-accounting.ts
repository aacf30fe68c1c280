/**
 * Redis messages delivered per broadcast, counted exactly by a tap in front of a private
 * redis-server, for each variant that uses Redis. A separate short pass with a freshly started
 * variant, so the tap's extra hop never touches the latency figures.
 */
import { performance } from "node:perf_hooks";
import { RedisServer } from "../lib/redis.js";
import { RedisTap } from "../lib/redis-tap.js";
import { RunningVariant, type VariantDef } from "../variants.js";
import { closeGroup, connectGroup, groupReceived, overBudget, sleep, type BenchContext } from "./common.js";

export interface RedisAccountingRow {
  variant: string;
  hosts: number;
  workersPerHost: number;
  broadcasts: number;
  delivered: number;
  deliveredPerBroadcast: number;
  publishesPerBroadcast: number;
  redisCpuPerBroadcastUs: number;
  clientLoss: number;
}

export async function runRedisAccounting(ctx: BenchContext, defs: readonly VariantDef[]): Promise<{ rows: RedisAccountingRow[]; skipped: string[] }> {
  const a = ctx.settings.redisAccounting;
  const rows: RedisAccountingRow[] = [];
  const skipped: string[] = [];
  for (const def of defs.filter((d) => d.redis)) {
    if (overBudget(ctx)) {
      skipped.push(`redis accounting ${def.key} (time budget)`);
      continue;
    }
    const redis = await RedisServer.start();
    const tap = new RedisTap(redis.port);
    await tap.listen();
    let rv: RunningVariant | undefined;
    try {
      rv = await RunningVariant.start(def, ctx.workers, tap.url);
      const info = await connectGroup(ctx, rv, "acct", a.clients);
      await sleep(300);
      const before = await redis.counters();
      const tap0 = tap.delivered;
      const active = ctx.loadgens.map((_, i) => i).filter((i) => (info.perGen[i] ?? 0) > 0);
      // one sender on one generator: every broadcast enters at host A
      const g = ctx.loadgens[active[0]!]!;
      const sent = await g.request({
        type: "send", group: "acct", kind: "broadcast", rate: a.rate, durationMs: (a.broadcasts / a.rate) * 1000,
        senders: 1, payloadBytes: 16, prefix: "", roomCount: 1, roomOffset: 0,
      });
      const expected = sent.sent * info.ok;
      const t0 = performance.now();
      let rep = await groupReceived(ctx, "acct");
      while (rep.received < expected && performance.now() - t0 < 3000) {
        await sleep(50);
        rep = await groupReceived(ctx, "acct");
      }
      await sleep(200);
      const after = await redis.counters();
      const delivered = tap.delivered - tap0;
      const row: RedisAccountingRow = {
        variant: def.key, hosts: def.hosts, workersPerHost: def.workersPerHost(ctx.workers), broadcasts: sent.sent, delivered,
        deliveredPerBroadcast: delivered / sent.sent,
        publishesPerBroadcast: (after.publishes - before.publishes) / sent.sent,
        redisCpuPerBroadcastUs: ((after.cpu - before.cpu) / sent.sent) * 1e6,
        clientLoss: expected > 0 ? 1 - Math.min(rep.received, expected) / expected : 0,
      };
      rows.push(row);
      ctx.log(`redis     ${def.key.padEnd(10)} ${row.deliveredPerBroadcast.toFixed(2)} messages delivered and ${row.publishesPerBroadcast.toFixed(2)} PUBLISH/XADD per broadcast (${sent.sent} broadcasts)`);
      await closeGroup(ctx, "acct");
    } catch (err) {
      skipped.push(`redis accounting ${def.key}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      await rv?.stop();
      await tap.close();
      await redis.stop();
    }
  }
  return { rows, skipped };
}
