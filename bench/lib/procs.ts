/**
 * Every process the harness starts is registered here and stopped by PID at the end, on error and
 * on SIGINT/SIGTERM. Servers under test are found ready by their `"msg":"ready"` JSON log line.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import readline from "node:readline";
import { tree } from "./procstat.js";

const started = new Set<ChildProcess>();

function register(child: ChildProcess): void {
  started.add(child);
  child.once("exit", () => started.delete(child));
}

export function spawnTracked(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  register(child);
  return child;
}

export function forkTracked(modulePath: string, args: readonly string[] = [], execArgv: string[] = []): ChildProcess {
  const child = fork(modulePath, args, { stdio: ["ignore", "inherit", "inherit", "ipc"], execArgv });
  register(child);
  return child;
}

/**
 * Stops `child` and the descendants it has now: SIGTERM to each PID, then SIGKILL to the ones still
 * alive after `graceMs`.
 */
export async function stopTree(child: ChildProcess, graceMs = 3000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined) return;
  const pids = tree(pid);
  if (child.exitCode !== null || child.signalCode !== null) {
    // the root is gone; still stop any descendants it left
    for (const p of pids) killQuietly(p, "SIGKILL");
    return;
  }
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  for (const p of pids) killQuietly(p, "SIGTERM");
  const timer = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
  await Promise.race([exited, timer]);
  for (const p of pids) killQuietly(p, "SIGKILL");
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

export async function stopAll(): Promise<void> {
  await Promise.all([...started].map((c) => stopTree(c, 2000)));
}

/** Last resort, synchronous (process 'exit'): SIGKILL every tracked tree. */
function killAllSync(): void {
  for (const c of started) {
    if (c.pid === undefined) continue;
    for (const p of tree(c.pid)) killQuietly(p, "SIGKILL");
  }
}

let cleanupInstalled = false;
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on("exit", killAllSync);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: stopping everything the harness started\n`);
      void stopAll().finally(() => process.exit(130));
    });
  }
}

export interface ReadyLine {
  port: number;
  workers: number;
}

/** Resolves with the first `"msg":"ready"` JSON line on the child's stdout. */
export function waitReady(child: ChildProcess, timeoutMs: number, label: string): Promise<ReadyLine> {
  return new Promise<ReadyLine>((resolve, reject) => {
    const stderr: string[] = [];
    child.stderr?.on("data", (d: Buffer) => {
      if (stderr.join("").length < 4000) stderr.push(d.toString());
    });
    const timer = setTimeout(() => finish(new Error(`${label}: no ready line within ${timeoutMs} ms ${stderr.join("").slice(0, 800)}`)), timeoutMs);
    const onExit = (code: number | null): void =>
      finish(new Error(`${label}: exited (${code}) before ready: ${stderr.join("").slice(0, 800)}`));
    child.once("exit", onExit);
    const rl = readline.createInterface({ input: child.stdout! });
    let done = false;
    function finish(err: Error | undefined, line?: ReadyLine): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.off("exit", onExit);
      if (err) reject(err);
      else resolve(line!);
    }
    rl.on("line", (text) => {
      if (done || !text.includes('"ready"')) return;
      try {
        const o = JSON.parse(text) as Record<string, unknown>;
        if (o["msg"] === "ready" && typeof o["port"] === "number") {
          finish(undefined, { port: o["port"], workers: typeof o["workers"] === "number" ? o["workers"] : 1 });
        }
      } catch {
        /* not JSON; keep reading */
      }
    });
    // Keep draining output so a chatty server never blocks on a full pipe.
    child.stdout?.resume();
  });
}
