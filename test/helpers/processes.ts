import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import fs from "node:fs";

/**
 * Every process a test starts is registered here and killed (with its process group) by the root
 * hook after each test file, so a failing test never leaves servers behind.
 */
const running = new Set<ChildProcess>();

export function spawnTracked(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  // Own process group, so the whole tree (primary and its workers) can be killed by PID.
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"], detached: true, ...options });
  running.add(child);
  child.once("exit", () => running.delete(child));
  return child;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Kills the process group of `child` with SIGKILL and waits for the leader to exit. */
export async function killTree(child: ChildProcess): Promise<void> {
  if (child.pid === undefined) return;
  const exited = child.exitCode !== null || child.signalCode !== null;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // already gone
  }
  if (!exited) await new Promise((resolve) => child.once("exit", resolve));
  running.delete(child);
}

export async function killAll(): Promise<void> {
  await Promise.all([...running].map((child) => killTree(child)));
}

/** Resolves with the exit code (or signal) of `child`, or rejects after `ms`. */
export function waitForExit(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`process ${child.pid} did not exit within ${ms} ms`)), ms);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

function readProc(file: string): string {
  try {
    return fs.readFileSync(file, "utf8").trim();
  } catch {
    return "?";
  }
}

/** The fields of a /proc stat file after the command's name: state first, utime at 11, stime at 12. */
function statFields(file: string): string[] {
  return readProc(file).split(") ")[1]?.split(" ") ?? [];
}

/**
 * What a process that does not exit is doing, for a failure message: its state, CPU ticks, where
 * each thread waits in the kernel (blocked on a full pipe, a futex, busy in JavaScript) and its
 * children, so a hang seen once in CI says where it was.
 */
export function describeProcess(pid: number, depth = 0): string {
  if (!isAlive(pid)) return `pid ${pid}: gone`;
  const stat = statFields(`/proc/${pid}/stat`);
  const lines = [`pid ${pid} state ${stat[0]} utime ${stat[11]} stime ${stat[12]} cmd ${readProc(`/proc/${pid}/cmdline`).replace(/\0/g, " ").slice(0, 120)}`];
  let tasks: string[] = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    // gone meanwhile
  }
  for (const tid of tasks) {
    const taskStat = statFields(`/proc/${pid}/task/${tid}/stat`);
    lines.push(`  thread ${tid} ${readProc(`/proc/${pid}/task/${tid}/comm`)} state ${taskStat[0]} utime ${taskStat[11]} wchan ${readProc(`/proc/${pid}/task/${tid}/wchan`)}`);
  }
  lines.push(`  kernel stack: ${readProc(`/proc/${pid}/stack`).split("\n").slice(0, 6).join(" | ")}`);
  const fd1 = readProc(`/proc/${pid}/fdinfo/1`).split("\n").find((l) => l.startsWith("flags")) ?? "?";
  lines.push(`  stdout ${fd1}`);
  if (depth === 0) {
    const children = readProc(`/proc/${pid}/task/${pid}/children`).split(/\s+/).filter(Boolean).map(Number);
    for (const child of children) lines.push(describeProcess(child, 1).replace(/^/gm, "    "));
  }
  return lines.join("\n");
}
