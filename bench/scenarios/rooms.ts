/**
 * Rooms of a few members each, every room's members on one worker (1 host x 3 workers) or on one
 * host (simulated hosts: separate processes, 1 worker each, sharing a redis-server): what a worker
 * or host holding clients but no member spends on the rooms' traffic, against an idle window of
 * the same length just before, and how many messages Redis delivers per room message (counted
 * exactly by a tap in front of the variant's own redis-server, less what it delivered in the idle
 * window: heartbeats). Each variant is started fresh for this scenario.
 */
import os from "node:os";
import { performance } from "node:perf_hooks";
import { MachineCpu } from "../lib/cpu.js";
import { quantile } from "../lib/histogram.js";
import { TreeMeter } from "../lib/procstat.js";
import { RedisServer } from "../lib/redis.js";
import { RedisTap, TAP_KINDS } from "../lib/redis-tap.js";
import type { IdentifyResult } from "../loadgen/messages.js";
import { RunningVariant, type VariantDef } from "../variants.js";
import { closeGroup, connectGroup, groupReceived, overBudget, quiesce, sleep, type BenchContext } from "./common.js";

export interface RoomsRow {
  /** "1 host x 3 workers" or "4 hosts x 1 worker". */
  layout: string;
  variant: string;
  hosts: number;
  workersPerHost: number;
  clients: number;
  rooms: number;
  roomSize: number;
  /** The worker ("host-a/w3") or host ("host-d") without members, and its clients. */
  bystander: string;
  bystanderClients: number;
  rate: number;
  sent: number;
  seconds: number;
  expected: number;
  received: number;
  loss: number;
  p99: number;
  /** CPU of the bystander, cores (1 = one core busy), in the idle window and during the traffic. */
  bystanderIdleCores: number;
  bystanderBusyCores: number;
  /** The bystander's CPU beyond idle per 1000 room messages, ms. */
  bystanderMsPer1000: number;
  /** All processes of the variant during the traffic, cores. */
  serverCores: number;
  redisDeliveriesPerMessage: number | undefined;
  /** Per room message, by kind ("4.00 smessage"), idle window not subtracted. */
  redisKinds?: string | undefined;
  redisPublishesPerMessage: number | undefined;
  redisCpuPerMessageUs: number | undefined;
  machineBusy: number;
  /** Cores used by anything but the variant, the generators, Redis and the harness. */
  foreignCores: number;
}

interface Layout {
  name: string;
  hosts: number;
  workersPerHost: number;
  /** Keys of the variants run on this layout, in order, with the label they get in it. */
  variants: { key: string }[];
}

const ONE_HOST_WORKERS = 3;
const DRAIN_MAX_MS = 15_000;
const DRAIN_QUIET_MS = 1500;

function layouts(ctx: BenchContext): Layout[] {
  const s = ctx.settings.roomsIdle;
  const out: Layout[] = [{
    name: `1 host x ${ONE_HOST_WORKERS} workers`, hosts: 1, workersPerHost: ONE_HOST_WORKERS,
    variants: ctx.settings.mode === "quick" ? [{ key: "stock" }, { key: "sockfleet" }] : [{ key: "stock" }, { key: "seed" }, { key: "sockfleet" }],
  }];
  if (s.multiHost) {
    out.push({
      name: `${s.hosts} hosts x 1 worker`, hosts: s.hosts, workersPerHost: 1,
      // most telling first: a full run may reach its time budget before the last
      variants: [{ key: "sf-bridge-norec" }, { key: "sf-bridge" }, { key: "seed" }, { key: "sharded-dynamic" }, { key: "redis-streams" }, { key: "sharded-static" }, { key: "sf-adapter" }],
    });
  }
  return out;
}

async function identifyAll(ctx: BenchContext, group: string): Promise<IdentifyResult> {
  const parts = await Promise.all(ctx.loadgens.map((g) => g.request({ type: "identify", group, concurrency: 50 })));
  const out: IdentifyResult = {};
  for (const part of parts) {
    for (const [key, v] of Object.entries(part)) {
      const entry = (out[key] ??= { count: 0, pid: v.pid });
      entry.count += v.count;
    }
  }
  return out;
}

async function measureOne(ctx: BenchContext, def: VariantDef, layout: Layout): Promise<RoomsRow> {
  const s = ctx.settings.roomsIdle;
  const redis = def.redis ? await RedisServer.start() : undefined;
  const tap = redis ? new RedisTap(redis.port) : undefined;
  await tap?.listen();
  const shaped: VariantDef = { ...def, hosts: layout.hosts, workersPerHost: () => layout.workersPerHost };
  let rv: RunningVariant | undefined;
  try {
    rv = await RunningVariant.start(shaped, layout.workersPerHost, tap?.url);
    const group = `rooms-${def.key}`;
    const info = await connectGroup(ctx, rv, group, s.clients);
    // a few clients timing out on a loaded box only make a room fewer; more means something is wrong
    if (info.failed > s.clients / 10) throw new Error(`${info.failed} of ${s.clients} clients failed to connect: ${info.errors.join("; ")}`);
    const landings = await identifyAll(ctx, group);
    const keys = Object.keys(landings).sort();
    const wanted = layout.hosts * layout.workersPerHost;
    if (keys.length < wanted) throw new Error(`clients landed on ${keys.length} of ${wanted} workers (${keys.join(", ")})`);
    // the last worker (one host) or the last host holds clients but no member
    const bystanderHost = rv.hosts.at(-1)!;
    const exclude = layout.hosts === 1 ? [keys.at(-1)!] : keys.filter((k) => k.startsWith(`${bystanderHost.name}/`));
    const bystander = layout.hosts === 1 ? exclude[0]! : bystanderHost.name;
    const bystanderClients = exclude.reduce((a, k) => a + landings[k]!.count, 0);
    const plans = await Promise.all(ctx.loadgens.map((g, i) => g.request({
      type: "plan-rooms", group, prefix: `g${i}-`, roomSize: s.roomSize, exclude, concurrency: 50,
    })));
    const rooms = plans.reduce((a, p) => a + p.rooms, 0);
    const joinFailed = plans.reduce((a, p) => a + p.joinFailed, 0);
    if (joinFailed > 0) throw new Error(`${joinFailed} joins failed`);
    if (rooms === 0) throw new Error("no room could be filled");
    const bystanderMeter = layout.hosts === 1
      ? new TreeMeter(() => [landings[bystander]!.pid])
      : new TreeMeter(() => [bystanderHost.child.pid ?? -1]);
    await quiesce(ctx, group);
    await sleep(500);

    // idle window: the same processes and clients, no traffic
    bystanderMeter.begin();
    const tapIdle0 = tap?.delivered ?? 0;
    const idle0 = performance.now();
    await sleep(s.durationMs);
    const idleWall = (performance.now() - idle0) / 1000;
    const bystanderIdleCores = bystanderMeter.cpuSince() / idleWall;
    const tapIdleRate = ((tap?.delivered ?? 0) - tapIdle0) / idleWall;

    // traffic window: each generator sends to its own rooms, from members of rooms on another landing
    await Promise.all(ctx.loadgens.map((g) => g.request({ type: "reset", group })));
    const machine = new MachineCpu();
    const harness0 = process.cpuUsage();
    bystanderMeter.begin();
    rv.meter.begin();
    ctx.loadgenMeter.begin();
    const redis0 = await redis?.counters();
    const tap0 = tap?.delivered ?? 0;
    const kinds0 = [...(tap?.byKind ?? [])];
    const t0 = performance.now();
    const active = plans.map((p, i) => (p.rooms > 0 ? i : -1)).filter((i) => i >= 0);
    const sends = await Promise.all(active.map((i) => ctx.loadgens[i]!.request({
      type: "send", group, kind: "planned", rate: s.rate / active.length, durationMs: s.durationMs,
      senders: 1, payloadBytes: 32, prefix: "", roomCount: 1, roomOffset: 0,
    })));
    const seconds = (performance.now() - t0) / 1000;
    const sent = sends.reduce((a, x) => a + x.sent, 0);
    const expected = sent * s.roomSize;
    // drain: until everything arrived, or nothing arrives for DRAIN_QUIET_MS, at most DRAIN_MAX_MS
    let rep = await groupReceived(ctx, group);
    const drain0 = performance.now();
    let last = rep.received;
    let lastChange = performance.now();
    while (rep.received < expected && performance.now() - drain0 < DRAIN_MAX_MS) {
      await sleep(50);
      rep = await groupReceived(ctx, group);
      if (rep.received !== last) {
        last = rep.received;
        lastChange = performance.now();
      } else if (performance.now() - lastChange > DRAIN_QUIET_MS) break;
    }
    const wall = (performance.now() - t0) / 1000;
    const bystanderBusy = bystanderMeter.cpuSince();
    const serverCpu = rv.meter.cpuSince();
    const loadgenCpu = ctx.loadgenMeter.cpuSince();
    const machineBusy = machine.busy();
    const irqCores = machine.irq() * os.availableParallelism();
    const harness = process.cpuUsage(harness0);
    const redis1 = await redis?.counters();
    const tapDelivered = (tap?.delivered ?? 0) - tap0;
    const redisKinds = tap && sent > 0
      ? TAP_KINDS.map((k, i) => [k, (tap.byKind[i]! - kinds0[i]!) / sent] as const).filter(([, n]) => n > 0).map(([k, n]) => `${n.toFixed(2)} ${k}`).join(", ")
      : undefined;
    const redisCpu = redis0 && redis1 ? redis1.cpu - redis0.cpu : 0;
    const foreignCores = Math.max(0, (machineBusy * os.availableParallelism() * wall - serverCpu - loadgenCpu - redisCpu - (harness.user + harness.system) / 1e6) / wall - irqCores);
    const received = Math.min(rep.received, expected);
    await closeGroup(ctx, group);
    return {
      layout: layout.name, variant: def.key, hosts: layout.hosts, workersPerHost: layout.workersPerHost,
      clients: info.ok, rooms, roomSize: s.roomSize, bystander, bystanderClients,
      rate: s.rate, sent, seconds, expected, received: rep.received,
      loss: expected > 0 ? 1 - received / expected : 0,
      p99: quantile(rep.latency, 0.99) / 1000,
      bystanderIdleCores,
      bystanderBusyCores: bystanderBusy / wall,
      bystanderMsPer1000: sent > 0 ? ((bystanderBusy - bystanderIdleCores * wall) / sent) * 1e6 : NaN,
      serverCores: serverCpu / wall,
      redisDeliveriesPerMessage: tap && sent > 0 ? (tapDelivered - tapIdleRate * wall) / sent : undefined,
      redisKinds,
      redisPublishesPerMessage: redis0 && redis1 && sent > 0 ? (redis1.publishes - redis0.publishes) / sent : undefined,
      redisCpuPerMessageUs: redis0 && redis1 && sent > 0 ? (redisCpu / sent) * 1e6 : undefined,
      machineBusy,
      foreignCores,
    };
  } finally {
    await rv?.stop();
    await tap?.close();
    await redis?.stop();
  }
}

export async function runRooms(ctx: BenchContext, available: readonly VariantDef[]): Promise<{ rows: RoomsRow[]; skipped: string[] }> {
  const rows: RoomsRow[] = [];
  const skipped: string[] = [];
  for (const layout of layouts(ctx)) {
    for (const { key } of layout.variants) {
      const def = available.find((d) => d.key === key);
      if (def === undefined) continue;
      if (overBudget(ctx)) {
        skipped.push(`rooms ${layout.name} ${key} (time budget)`);
        continue;
      }
      try {
        const row = await measureOne(ctx, def, layout);
        rows.push(row);
        ctx.log(`rooms     ${key.padEnd(10)} ${layout.name}: ${row.rooms} rooms, ${row.sent} msgs, loss ${(row.loss * 100).toFixed(2)}%, bystander ${row.bystander} ${(row.bystanderIdleCores * 100).toFixed(1)}% idle -> ${(row.bystanderBusyCores * 100).toFixed(1)}% of a core (${row.bystanderMsPer1000.toFixed(1)} ms per 1000 msgs)${row.redisDeliveriesPerMessage === undefined ? "" : `, Redis ${row.redisDeliveriesPerMessage.toFixed(2)} deliveries/msg (${row.redisKinds})`}`);
      } catch (err) {
        const text = `rooms ${layout.name} ${key}: ${err instanceof Error ? err.message : String(err)}`;
        skipped.push(text);
        ctx.log(text);
      }
    }
  }
  return { rows, skipped };
}
