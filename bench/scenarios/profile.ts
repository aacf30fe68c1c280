/**
 * Where the time goes: a V8 CPU profile (node --cpu-prof on the server's command line; cluster
 * workers inherit it as execArgv) of a broadcast load on a fresh server, summarised per process by function
 * and by package.
 */
import fs from "node:fs";
import path from "node:path";
import { RunningVariant, type VariantDef } from "../variants.js";
import { closeGroup, connectGroup, measureStep, type BenchContext } from "./common.js";

export interface ProfileEntry {
  name: string;
  pct: number;
}

export interface ProcessProfile {
  pid: number;
  role: string;
  /** Share of the profiled time not idle. */
  busyPct: number;
  seconds: number;
  topFunctions: ProfileEntry[];
  byPackage: ProfileEntry[];
}

export interface ProfileResult {
  variant: string;
  rate: number;
  subscribers: number;
  seconds: number;
  processes: ProcessProfile[];
}

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
}

function packageOf(url: string, fn: string): string {
  if (url === "") return fn.startsWith("(") ? fn : "(native)";
  if (url.startsWith("node:")) return url.replace(/^node:(internal\/)?/, "node:").split("/").slice(0, 2).join("/");
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.includes("/dist/src/")) return "sockfleet";
  if (url.includes("/dist/bench/")) return "bench server";
  return path.basename(url);
}

export function summarise(file: string, role: string, pid: number): ProcessProfile {
  const prof = JSON.parse(fs.readFileSync(file, "utf8")) as CpuProfile;
  const total = prof.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
  let idle = 0;
  const fns = new Map<string, number>();
  const pkgs = new Map<string, number>();
  for (const n of prof.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === "(idle)") {
      idle += hits;
      continue;
    }
    const pkg = packageOf(url, functionName);
    const where = url === "" ? "" : url.startsWith("node:") ? `${url}:${lineNumber + 1}` : `${pkg}/${path.basename(url)}:${lineNumber + 1}`;
    const name = `${functionName || "(anonymous)"} ${where}`.trim();
    fns.set(name, (fns.get(name) ?? 0) + hits);
    pkgs.set(pkg, (pkgs.get(pkg) ?? 0) + hits);
  }
  const busy = total - idle || 1;
  const top = (m: Map<string, number>, k: number): ProfileEntry[] =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, hits]) => ({ name, pct: hits / busy }));
  return {
    pid, role, busyPct: busy / total, seconds: (prof.endTime - prof.startTime) / 1e6,
    topFunctions: top(fns, 12), byPackage: top(pkgs, 10),
  };
}

export async function runProfile(ctx: BenchContext, def: VariantDef, rate: number, dir: string): Promise<ProfileResult> {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const rv = await RunningVariant.start(def, ctx.workers, undefined, ["--cpu-prof", `--cpu-prof-dir=${dir}`]);
  const roots = new Set(rv.hosts.map((h) => h.child.pid));
  const subscribers = ctx.settings.broadcast.subscribers;
  const s = ctx.settings.broadcast;
  const seconds = 4;
  try {
    const info = await connectGroup(ctx, rv, "profile", subscribers);
    await measureStep(ctx, rv, info, {
      kind: "broadcast", rate, durationMs: seconds * 1000, drainMs: s.drainMs, senders: s.senders,
      payloadBytes: s.payloadBytes, fanout: (n) => n, roomPrefix: "", roomCount: 1,
    });
    await closeGroup(ctx, "profile");
  } finally {
    await rv.stop(); // SIGTERM: the processes exit and write their profiles
  }
  const processes: ProcessProfile[] = [];
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith(".cpuprofile"))) {
    const pid = Number(f.split(".")[3]);
    const p = summarise(path.join(dir, f), roots.has(pid) ? "primary" : "worker", pid);
    processes.push(p);
  }
  processes.sort((a, b) => b.busyPct * b.seconds - a.busyPct * a.seconds);
  ctx.log(`profile   ${def.key.padEnd(10)} ${processes.length} processes profiled at ${rate} broadcasts/s x ${subscribers}`);
  return { variant: def.key, rate, subscribers, seconds, processes };
}
