/**
 * `node dist/bench/probes/idle-memory.js [--variants sockfleet,plain,rawws] [--counts 1000,3000,5000,10000]
 *   [--generators 2] [--snapshots] [--args "--recovery off"] [--node-args "--max-semi-space-size=1"]`
 * (environment variables such as MALLOC_ARENA_MAX reach the server as set for the probe)
 *
 * Memory per idle WebSocket-only connection in the one process that holds the connections: a
 * sockfleet worker (1 host x 1 worker), plain Socket.IO (1 process) or the raw `ws` ceiling. Load
 * generators (separate processes, 127.0.0.x source addresses) open WebSocket-only clients up to
 * each count; after a settle the server process gets SIGUSR2, runs a full GC and reports heapUsed
 * and RSS (src/observability/memory-probe.ts). Heap and RSS slopes are least squares over the
 * counts. With --snapshots each sample also writes a heap snapshot (use small counts).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LoadGen } from "../lib/loadgen-handle.js";
import { installCleanup, stopAll } from "../lib/procs.js";
import { children } from "../lib/procstat.js";
import { RunningVariant, VARIANTS } from "../variants.js";
import type { MemoryReport } from "../../src/observability/memory-probe.js";

interface Options {
  variants: string[];
  counts: number[];
  generators: number;
  snapshots: boolean;
  extraArgs: string[];
  /** Node flags for the server process (cluster workers inherit them), on top of --expose-gc. */
  nodeArgs: string[];
  settleMs: number;
}

function parseOptions(argv: readonly string[]): Options {
  const o: Options = { variants: ["sockfleet", "plain", "rawws"], counts: [1000, 3000, 5000, 10000], generators: 2, snapshots: false, extraArgs: [], nodeArgs: [], settleMs: 1500 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === "--variants") o.variants = next().split(",");
    else if (a === "--counts") o.counts = next().split(",").map(Number);
    else if (a === "--generators") o.generators = Number(next());
    else if (a === "--snapshots") o.snapshots = true;
    else if (a === "--args") o.extraArgs = next().split(" ").filter(Boolean);
    else if (a === "--node-args") o.nodeArgs = next().split(" ").filter(Boolean);
    else if (a === "--settle") o.settleMs = Number(next());
    else throw new Error(`unknown option ${a}`);
  }
  if (o.counts.some((c) => !Number.isInteger(c) || c < 0) || o.counts.length < 2) throw new Error("--counts needs two or more whole numbers");
  return o;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Least-squares slope of y over x. */
export function slope(points: ReadonlyArray<{ x: number; y: number }>): number {
  const mx = points.reduce((a, p) => a + p.x, 0) / points.length;
  const my = points.reduce((a, p) => a + p.y, 0) / points.length;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den > 0 ? num / den : NaN;
}

/** The process holding the connections: the sockfleet worker (a child with the data path set), else the server itself. */
function connectionHolder(rv: RunningVariant): number {
  const root = rv.hosts[0]!.child.pid!;
  if (!rv.def.key.startsWith("sf") && rv.def.key !== "sockfleet") return root;
  const workers = children(root).filter((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/environ`, "utf8").includes("SOCKFLEET_DATA_PATH=");
    } catch {
      return false;
    }
  });
  if (workers.length !== 1) throw new Error(`expected 1 sockfleet worker under ${root}, found ${workers.length}`);
  return workers[0]!;
}

/** Signals `pid` and waits for its next report (a fresh seq). */
async function probe(dir: string, pid: number, lastSeq: number, timeoutMs = 120_000): Promise<MemoryReport> {
  process.kill(pid, "SIGUSR2");
  const file = path.join(dir, `${pid}.json`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = JSON.parse(fs.readFileSync(file, "utf8")) as MemoryReport;
      if (r.seq > lastSeq) return r;
    } catch {
      /* not written yet */
    }
    if (Date.now() > deadline) throw new Error(`no memory report from ${pid} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function measure(key: string, o: Options, dir: string): Promise<void> {
  const def = VARIANTS.find((v) => v.key === key);
  if (!def) throw new Error(`unknown variant ${key}`);
  const started = Date.now();
  const gens = Array.from({ length: o.generators }, (_, i) => new LoadGen(i, `127.0.0.${2 + i}`));
  // The variant's own command plus --extra args (sockfleet only) and the probe's node flags.
  const withArgs = o.extraArgs.length > 0 ? { ...def, command: (x: Parameters<typeof def.command>[0]) => [...def.command(x), ...o.extraArgs] } : def;
  const rv = await RunningVariant.start(withArgs, 1, undefined, ["--expose-gc", ...o.nodeArgs]);
  try {
    const pid = connectionHolder(rv);
    const port = rv.hosts[0]!.port;
    await sleep(o.settleMs);
    let last = await probe(dir, pid, 0);
    if (!last.gc) throw new Error("the server ran without --expose-gc");
    const points: Array<{ n: number; heap: number; rss: number }> = [];
    let open = 0;
    for (const target of o.counts) {
      const want = target - open;
      const shares = gens.map((_, i) => Math.floor(want / gens.length) + (i < want % gens.length ? 1 : 0));
      const results = await Promise.all(
        gens.map((g, i) => (shares[i]! > 0 ? g.request({ type: "open", group: "idle", host: "127.0.0.1", port, count: shares[i]!, localAddress: g.localAddress, concurrency: 100, timeoutMs: 10_000 }) : Promise.resolve({ ok: 0, failed: 0, ms: 0, errors: [] }))),
      );
      open += results.reduce((a, r) => a + r.ok, 0);
      const failed = results.reduce((a, r) => a + r.failed, 0);
      if (failed > 0) process.stdout.write(`  ${failed} clients failed: ${results.flatMap((r) => r.errors).slice(0, 3).join("; ")}\n`);
      await sleep(o.settleMs);
      last = await probe(dir, pid, last.seq);
      points.push({ n: open, heap: last.heapUsed, rss: last.rss });
      process.stdout.write(`  ${key} ${String(open).padStart(6)} clients: heap ${(last.heapUsed / 2 ** 20).toFixed(1)} MiB, RSS ${(last.rss / 2 ** 20).toFixed(1)} MiB${last.snapshot ? `, snapshot ${last.snapshot}` : ""}\n`);
    }
    const heap = slope(points.map((p) => ({ x: p.n, y: p.heap })));
    const rss = slope(points.map((p) => ({ x: p.n, y: p.rss })));
    process.stdout.write(
      `${key}${o.extraArgs.length ? ` ${o.extraArgs.join(" ")}` : ""}${o.nodeArgs.length ? ` (node ${o.nodeArgs.join(" ")})` : ""}: heap ${(heap / 1024).toFixed(2)} KiB/conn, RSS ${(rss / 1024).toFixed(2)} KiB/conn ` +
        `(least squares over ${points.map((p) => p.n).join(", ")} clients; ${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
    );
  } finally {
    await Promise.all(gens.map((g) => g.request({ type: "close", group: "idle" }).catch(() => 0)));
    await rv.stop();
    await Promise.all(gens.map((g) => g.stop()));
  }
}

async function main(): Promise<void> {
  installCleanup();
  const o = parseOptions(process.argv.slice(2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sf-idle-memory-"));
  process.env.SOCKFLEET_MEMORY_PROBE = dir;
  if (o.snapshots) process.env.SOCKFLEET_MEMORY_PROBE_SNAPSHOT = "1";
  for (const key of o.variants) await measure(key, o, dir);
  if (!o.snapshots) fs.rmSync(dir, { recursive: true, force: true });
}

if (require.main === module) {
  main()
    .catch((err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
    })
    .finally(() => void stopAll());
}
