import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

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
