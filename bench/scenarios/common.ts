/** What every scenario shares: the context, connecting groups of clients, one measured step. */
import os from "node:os";
import { performance } from "node:perf_hooks";
import type { TrafficKind } from "../loadgen/messages.js";
import { mergeHistograms, quantile, type HistogramData } from "../lib/histogram.js";
import type { LoadGen } from "../lib/loadgen-handle.js";
import { MachineCpu, waitMachineIdle } from "../lib/cpu.js";
import { TreeMeter } from "../lib/procstat.js";
import type { Settings } from "../settings.js";
import type { RunningVariant } from "../variants.js";

export interface BenchContext {
  settings: Settings;
  workers: number;
  loadgens: LoadGen[];
  loadgenMeter: TreeMeter;
  startedAt: number;
  /** Share of the run's time budget the current scenario may use up to (its end, from the start). */
  phaseEnd: number;
  log: (line: string) => void;
}

/** True once the current scenario has used its share of the run's time budget. */
export function overBudget(ctx: BenchContext): boolean {
  return performance.now() - ctx.startedAt > ctx.settings.budgetMs * ctx.phaseEnd;
}

/** Milliseconds left to the current scenario. */
export function budgetLeftMs(ctx: BenchContext): number {
  return ctx.startedAt + ctx.settings.budgetMs * ctx.phaseEnd - performance.now();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface GroupInfo {
  name: string;
  /** Connections per load generator, in generator order. */
  perGen: number[];
  ok: number;
  failed: number;
  errors: string[];
  ms: number;
}

/**
 * Opens `count` clients for a variant, spread over the generators and, within each generator, over
 * the variant's hosts, the first host first (so each generator's first connections, the senders,
 * are on host A).
 */
export async function connectGroup(ctx: BenchContext, rv: RunningVariant, name: string, count: number, concurrency = 50): Promise<GroupInfo> {
  const gens = ctx.loadgens;
  const started = performance.now();
  const shares = gens.map((_, i) => Math.floor(count / gens.length) + (i < count % gens.length ? 1 : 0));
  const results = await Promise.all(
    gens.map(async (g, i) => {
      let ok = 0;
      let failed = 0;
      const errors: string[] = [];
      const share = shares[i]!;
      for (let h = 0; h < rv.hosts.length; h++) {
        const n = Math.floor(share / rv.hosts.length) + (h < share % rv.hosts.length ? 1 : 0);
        if (n === 0) continue;
        const r = await g.request({
          type: "open", group: name, host: "127.0.0.1", port: rv.hosts[h]!.port, count: n,
          localAddress: g.localAddress, concurrency, timeoutMs: ctx.settings.connectTimeoutMs,
        });
        ok += r.ok;
        failed += r.failed;
        errors.push(...r.errors);
      }
      return { ok, failed, errors };
    }),
  );
  return {
    name,
    perGen: results.map((r) => r.ok),
    ok: results.reduce((a, r) => a + r.ok, 0),
    failed: results.reduce((a, r) => a + r.failed, 0),
    errors: [...new Set(results.flatMap((r) => r.errors))].slice(0, 5),
    ms: performance.now() - started,
  };
}

export async function closeGroup(ctx: BenchContext, name: string): Promise<void> {
  await Promise.all(ctx.loadgens.map((g) => g.request({ type: "close", group: name })));
}

export async function groupReceived(ctx: BenchContext, name: string): Promise<{ received: number; connections: number; latency: HistogramData; closed: number; unparsed: number }> {
  const reports = await Promise.all(ctx.loadgens.map((g) => g.request({ type: "report", group: name })));
  return {
    received: reports.reduce((a, r) => a + r.received, 0),
    connections: reports.reduce((a, r) => a + r.connections, 0),
    closed: reports.reduce((a, r) => a + r.closedUnexpectedly, 0),
    unparsed: reports.reduce((a, r) => a + r.unparsed, 0),
    latency: mergeHistograms(reports.map((r) => r.latency)),
  };
}

/** Waits until a group receives nothing for `quietMs` (bounded by `maxMs`): no backlog left. */
export async function quiesce(ctx: BenchContext, name: string, quietMs = 300, maxMs = 5000): Promise<void> {
  const started = performance.now();
  let last = (await groupReceived(ctx, name)).received;
  let lastChange = performance.now();
  while (performance.now() - started < maxMs) {
    await sleep(100);
    const now = (await groupReceived(ctx, name)).received;
    if (now !== last) {
      last = now;
      lastChange = performance.now();
    } else if (performance.now() - lastChange >= quietMs) return;
  }
}

export interface StepResult {
  variant: string;
  kind: TrafficKind;
  /** Offered messages per second (broadcasts, or room messages). */
  rate: number;
  sent: number;
  seconds: number;
  connections: number;
  expected: number;
  received: number;
  loss: number;
  deliveriesPerSec: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  serverCpu: number;
  loadgenCpu: number;
  /** Highest share of one core used by one generator during the step. */
  loadgenPeak: number;
  redisCpu: number | undefined;
  redisPublishes: number | undefined;
  serverRss: number;
  cpuPerMillion: number;
  deliveriesPerCpuSecond: number;
  /** Send loop behind schedule (the generator could not offer the rate). */
  sendLagMs: number;
  /** Share of the machine's cores busy during the step (all processes, kernel included). */
  machineBusy: number;
  /** Machine busy share just before the step started (after waiting for it to calm down). */
  busyBefore: number;
  /** Cores used during the step by processes other than the server, generators, Redis and harness. */
  foreignCores: number;
  /** Cores in irq/softirq (loopback TCP in the kernel, charged to no process). */
  irqCores: number;
  saturated: boolean;
  closedUnexpectedly: number;
}

export interface StepSpec {
  kind: TrafficKind;
  rate: number;
  durationMs: number;
  drainMs: number;
  senders: number;
  payloadBytes: number;
  /** Deliveries per message sent: every connection for broadcasts, the room size for rooms. */
  fanout: (connections: number) => number;
  roomPrefix: string;
  roomCount: number;
  /** Wait for a quiet machine first (default); the unmeasured warm-up skips it. */
  waitIdle?: boolean;
}

const ms = (us: number): number => us / 1000;

/** Cores of foreign work (other jobs on a shared box) above which a step counts as disturbed. */
export const DISTURBED_CORES = 0.35;

export function disturbed(r: StepResult): boolean {
  return r.foreignCores > DISTURBED_CORES;
}

/** A step is saturated when more than 1% is lost, p99 reaches this, or clients were dropped. */
export const SATURATION_P99_MS = 500;

/** One measured step: send at `rate` for `durationMs` from the group's first connections, drain, count. */
export async function measureStep(ctx: BenchContext, rv: RunningVariant, info: GroupInfo, spec: StepSpec): Promise<StepResult> {
  await quiesce(ctx, info.name);
  const busyBefore = spec.waitIdle === false ? NaN : await waitMachineIdle(0.15, 250, ctx.settings.idleWaitMs);
  await Promise.all(ctx.loadgens.map((g) => g.request({ type: "reset", group: info.name })));
  const machine = new MachineCpu();
  const harness0 = process.cpuUsage();
  rv.meter.begin();
  ctx.loadgenMeter.begin();
  const perGenMeters = ctx.loadgens.map((g) => new TreeMeter(() => [g.pid]));
  for (const m of perGenMeters) m.begin();
  const redis0 = rv.redis ? await rv.redis.counters() : undefined;
  const t0 = performance.now();
  const active = ctx.loadgens.map((_, i) => i).filter((i) => (info.perGen[i] ?? 0) > 0);
  const sends = await Promise.all(
    active.map((i, k) =>
      ctx.loadgens[i]!.request({
        type: "send", group: info.name, kind: spec.kind,
        rate: spec.rate / active.length, durationMs: spec.durationMs,
        senders: Math.max(1, Math.round(spec.senders / active.length)),
        payloadBytes: spec.payloadBytes, prefix: spec.roomPrefix, roomCount: spec.roomCount,
        roomOffset: k * 7919,
      }),
    ),
  );
  const sendSeconds = (performance.now() - t0) / 1000;
  const sent = sends.reduce((a, s) => a + s.sent, 0);
  const sendLagMs = Math.max(0, ...sends.map((s) => s.lagMs));
  // drain: until everything expected arrived, or nothing arrives for a while, or drainMs
  let rep = await groupReceived(ctx, info.name);
  const expected = sent * spec.fanout(rep.connections);
  const drainStart = performance.now();
  let last = rep.received;
  let lastChange = performance.now();
  while (rep.received < expected && performance.now() - drainStart < spec.drainMs) {
    await sleep(50);
    rep = await groupReceived(ctx, info.name);
    if (rep.received !== last) {
      last = rep.received;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > 500) break;
  }
  const wall = (performance.now() - t0) / 1000;
  const machineBusy = machine.busy();
  const irqCores = machine.irq() * os.availableParallelism();
  const harness1 = process.cpuUsage(harness0);
  const harnessCpu = (harness1.user + harness1.system) / 1e6;
  const serverCpu = rv.meter.cpuSince();
  const loadgenCpu = ctx.loadgenMeter.cpuSince();
  const loadgenPeak = Math.max(...perGenMeters.map((m) => m.cpuSince() / wall));
  const redis1 = rv.redis ? await rv.redis.counters() : undefined;
  const redisCpu = redis0 && redis1 ? redis1.cpu - redis0.cpu : undefined;
  // CPU the machine spent on anything but this step's processes (other jobs, kernel threads)
  const foreignCores = Math.max(0, (machineBusy * os.availableParallelism() * wall - serverCpu - loadgenCpu - (redisCpu ?? 0) - harnessCpu) / wall - irqCores);
  const received = Math.min(rep.received, expected);
  const loss = expected > 0 ? 1 - received / expected : 0;
  const p99 = ms(quantile(rep.latency, 0.99));
  const saturated = loss > 0.01 || !(p99 < SATURATION_P99_MS) || rep.closed > 0;
  const serverRss = rv.meter.rss();
  // let this variant's backlog drain before anything else is measured
  await quiesce(ctx, info.name, 300, 10_000);
  return {
    variant: rv.def.key,
    kind: spec.kind,
    rate: spec.rate,
    sent,
    seconds: sendSeconds,
    connections: rep.connections,
    expected,
    received: rep.received,
    loss,
    deliveriesPerSec: rep.received / sendSeconds,
    p50: ms(quantile(rep.latency, 0.5)),
    p90: ms(quantile(rep.latency, 0.9)),
    p99,
    max: ms(rep.latency.max),
    serverCpu,
    loadgenCpu,
    loadgenPeak,
    redisCpu,
    redisPublishes: redis0 && redis1 ? redis1.publishes - redis0.publishes : undefined,
    serverRss,
    cpuPerMillion: rep.received > 0 ? (serverCpu / rep.received) * 1e6 : NaN,
    deliveriesPerCpuSecond: serverCpu > 0 ? rep.received / serverCpu : NaN,
    sendLagMs,
    machineBusy,
    busyBefore,
    foreignCores,
    irqCores,
    saturated,
    closedUnexpectedly: rep.closed,
  };
}
