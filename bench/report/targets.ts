/** The issue's targets, evaluated on one run's results: reported (met / missed by how much), never asserted. */
import type { RunResults } from "../results.js";
import { disturbed, type StepResult } from "../scenarios/common.js";

export interface TargetRow {
  target: string;
  measured: string;
  status: string;
}

export function stepsOf(r: RunResults, variant: string, kind: "broadcast" | "room" = "broadcast"): StepResult[] {
  const steps = kind === "broadcast" ? (r.traffic?.broadcast ?? []) : (r.traffic?.rooms ?? []);
  return steps.filter((s) => s.variant === variant).sort((a, b) => a.rate - b.rate);
}

/** Offered broadcast rates at which every listed variant ran below saturation, undisturbed by other jobs. */
export function commonRates(r: RunResults, variants: readonly string[]): number[] {
  return r.settings.broadcast.rates.filter((rate) =>
    variants.every((v) => stepsOf(r, v).some((s) => s.rate === rate && !s.saturated && !disturbed(s))),
  );
}

/** Highest offered broadcast rate at which every listed variant ran below saturation. */
export function commonRate(r: RunResults, variants: readonly string[]): number | undefined {
  return commonRates(r, variants).at(-1);
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function stepAt(r: RunResults, variant: string, rate: number | undefined): StepResult | undefined {
  return rate === undefined ? undefined : stepsOf(r, variant).find((s) => s.rate === rate);
}

/**
 * Highest rate a variant sustained below its first saturated step, and whether it saturated at all
 * within the sweep; saturated steps that ran beside other jobs do not count as the variant's own.
 */
export function sustained(r: RunResults, variant: string): { rate: number | undefined; saturated: boolean } {
  const steps = stepsOf(r, variant).filter((s) => !(s.saturated && disturbed(s)));
  const firstSat = steps.find((s) => s.saturated);
  const ok = steps.filter((s) => !s.saturated && (firstSat === undefined || s.rate < firstSat.rate));
  return { rate: ok.at(-1)?.rate, saturated: firstSat !== undefined };
}

const pct = (x: number): string => `${(x * 100).toFixed(0)}%`;
const has = (r: RunResults, v: string): boolean => r.variants.some((s) => s.key === v && s.available);

function notMeasured(r: RunResults, ...variants: string[]): string {
  const missing = variants.filter((v) => !has(r, v));
  return missing.length > 0 ? `not measured: ${missing.join(", ")} not available` : "not measured";
}

export function evaluateTargets(r: RunResults): TargetRow[] {
  const rows: TargetRow[] = [];

  // 1. CPU per delivery at the same offered load below saturation: the median over every such load
  {
    const rates = commonRates(r, ["sockfleet", "stock"]);
    const ratios = rates.map((rate) => stepAt(r, "sockfleet", rate)!.cpuPerMillion / stepAt(r, "stock", rate)!.cpuPerMillion);
    if (ratios.length > 0) {
      const ratio = median(ratios);
      rows.push({
        target: "server CPU per delivery, sockfleet 1 host <= 0.8x stock (same offered load, below saturation)",
        measured: `${ratio.toFixed(2)}x, the median over ${rates.length} loads (${rates.join(", ")} broadcasts/s; ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}x)`,
        status: ratio <= 0.8 ? "met" : `missed by ${pct(ratio / 0.8 - 1)}`,
      });
    } else rows.push({ target: "server CPU per delivery, sockfleet 1 host <= 0.8x stock", measured: "-", status: notMeasured(r, "sockfleet", "stock") });
  }

  // 2. p99 at half of the stock recipe's saturation rate
  {
    const st = sustained(r, "stock");
    const rates = r.settings.broadcast.rates;
    let half: number | undefined;
    if (st.rate !== undefined) {
      const goal = st.rate / 2;
      half = rates.reduce((best, x) => (Math.abs(Math.log(x / goal)) < Math.abs(Math.log(best / goal)) ? x : best), rates[0]!);
    }
    const sf = stepAt(r, "sockfleet", half);
    const sk = stepAt(r, "stock", half);
    if (sf && sk) {
      const bound = `${st.saturated ? "" : " (stock did not saturate in its sweep: its highest clean rate stands in)"}${disturbed(sf) || disturbed(sk) ? " (a step ran beside other jobs)" : ""}`;
      rows.push({
        target: "p99 latency at half the stock recipe's saturation rate: sockfleet <= stock",
        measured: `${sf.p99.toFixed(1)} ms vs ${sk.p99.toFixed(1)} ms at ${half} broadcasts/s (stock sustained ${st.rate}/s)${bound}`,
        status: sf.p99 <= sk.p99 ? "met" : `missed by ${pct(sf.p99 / sk.p99 - 1)}`,
      });
    } else rows.push({ target: "p99 latency at half the stock saturation rate: sockfleet <= stock", measured: "-", status: notMeasured(r, "sockfleet", "stock") });
  }

  // 3. Redis messages per broadcast, Redis CPU per broadcast
  const acct = (v: string) => r.redisAccounting.find((a) => a.variant === v);
  for (const [v, label, want] of [
    ["sf-bridge", "bridge mode: Redis messages delivered per broadcast = hosts", (a: { hosts: number; workersPerHost: number }) => a.hosts],
    ["sf-adapter", "adapter mode: Redis messages delivered per broadcast = hosts x workers", (a: { hosts: number; workersPerHost: number }) => a.hosts * a.workersPerHost],
  ] as const) {
    const a = acct(v);
    if (a) {
      const goal = want(a);
      rows.push({
        target: label,
        measured: `${a.deliveredPerBroadcast.toFixed(2)} (goal ${goal}; ${a.publishesPerBroadcast.toFixed(2)} PUBLISH/XADD per broadcast)`,
        status: Math.abs(a.deliveredPerBroadcast - goal) < 0.05 ? "met" : `missed: ${a.deliveredPerBroadcast.toFixed(2)} instead of ${goal}`,
      });
    } else rows.push({ target: label, measured: "-", status: notMeasured(r, v) });
  }
  {
    const rate = commonRate(r, ["sf-bridge", "sf-adapter"]);
    const b = stepAt(r, "sf-bridge", rate);
    const a = stepAt(r, "sf-adapter", rate);
    if (b && a && b.redisCpu !== undefined && a.redisCpu !== undefined && b.sent > 0 && a.sent > 0) {
      const bc = b.redisCpu / b.sent;
      const ac = a.redisCpu / a.sent;
      const w = r.workers;
      rows.push({
        target: `Redis CPU per broadcast, bridge <= 1/W of adapter mode (W = ${w})`,
        measured: `${(bc * 1e6).toFixed(1)} vs ${(ac * 1e6).toFixed(1)} us at ${rate} broadcasts/s = ${(bc / ac).toFixed(2)}x`,
        status: bc <= ac / w ? "met" : `missed by ${pct((bc / ac) * w - 1)}`,
      });
    } else rows.push({ target: "Redis CPU per broadcast, bridge <= 1/W of adapter mode", measured: "-", status: notMeasured(r, "sf-bridge", "sf-adapter") });
  }

  // 4. idle memory and count
  {
    const sf = r.idle.find((i) => i.variant === "sockfleet");
    const plain = r.idle.find((i) => i.variant === "plain");
    if (sf) {
      const kb = sf.bytesPerConnection / 1000;
      rows.push({
        target: "idle connection memory <= 10 KB RSS per connection",
        measured: `${kb.toFixed(1)} KB at ${sf.connections} connections${plain ? ` (plain Socket.IO ${(plain.bytesPerConnection / 1000).toFixed(1)} KB)` : ""}`,
        status: kb <= 10 ? "met" : `missed by ${pct(kb / 10 - 1)}`,
      });
    } else rows.push({ target: "idle connection memory <= 10 KB RSS per connection", measured: plain ? `plain Socket.IO ${(plain.bytesPerConnection / 1000).toFixed(1)} KB` : "-", status: notMeasured(r, "sockfleet") });
    const max = r.maxIdle.find((m) => m.variant === "sockfleet");
    if (max) {
      rows.push({
        target: ">= 100k idle connections on this box",
        measured: `${max.reached} (stopped by ${max.stoppedBy})`,
        status: max.reached >= 100_000 ? "met" : `missed by ${pct(1 - max.reached / 100_000)}`,
      });
    } else {
      const other = r.maxIdle[0];
      rows.push({
        target: ">= 100k idle connections on this box",
        measured: other ? `${other.variant}: ${other.reached} (stopped by ${other.stoppedBy})` : "-",
        status: r.settings.maxIdle === undefined ? "not measured in the quick run" : notMeasured(r, "sockfleet"),
      });
    }
  }

  // 5. storm
  for (const mode of ["websocket", "polling"] as const) {
    const sf = r.storm.find((s) => s.variant === "sockfleet" && s.mode === mode);
    const st = r.storm.find((s) => s.variant === "stock" && s.mode === mode);
    const label = `connection storm (${mode === "websocket" ? "WebSocket-only" : "polling-first"}): sockfleet >= stock connections/s`;
    if (sf && st) {
      const ratio = sf.perSecond / st.perSecond;
      const failures = sf.failed > 0 ? `; ${sf.failed} sockfleet connections failed` : "";
      rows.push({
        target: label,
        measured: `${sf.perSecond.toFixed(0)} vs ${st.perSecond.toFixed(0)} /s = ${ratio.toFixed(2)}x${failures}${st.failed ? `; ${st.failed} stock connections failed` : ""}`,
        status: ratio >= 1 && sf.failed === 0 ? "met" : sf.failed > 0 ? "missed: connections failed" : `missed by ${pct(1 - ratio)}`,
      });
    } else rows.push({ target: label, measured: "-", status: notMeasured(r, "sockfleet", "stock") });
  }

  // 6. fraction of the raw ws ceiling, over the loads every one of them sustained
  {
    const fraction = (v: string): { value: number; rates: number[] } | undefined => {
      const rates = commonRates(r, [v, "rawws", ...(v === "sockfleet" && has(r, "stock") ? ["stock"] : [])]);
      if (rates.length === 0) return undefined;
      return { value: median(rates.map((rate) => stepAt(r, v, rate)!.deliveriesPerCpuSecond / stepAt(r, "rawws", rate)!.deliveriesPerCpuSecond)), rates };
    };
    const sf = fraction("sockfleet");
    const st = fraction("stock");
    const parts = [sf ? `sockfleet ${pct(sf.value)}` : "", st ? `stock ${pct(st.value)}` : ""].filter(Boolean);
    rows.push({
      target: "deliveries per server CPU-second as a fraction of the raw ws ceiling (reported)",
      measured: parts.length ? `${parts.join(", ")} (median over ${(sf ?? st)!.rates.join(", ")} broadcasts/s)` : "-",
      status: sf ? "reported" : notMeasured(r, "sockfleet", "rawws"),
    });
  }
  return rows;
}
