import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { isAlive, killTree, spawnTracked, waitForExit } from "./processes";
import type { LogLine } from "./sockfleet";
import { waitUntil } from "./wait";

const ROOT = path.resolve(__dirname, "..", "..", "..");
const PM2 = path.join(ROOT, "node_modules", "pm2", "bin", "pm2");
export const ECOSYSTEM = path.join(ROOT, "ecosystem.config.js");

/**
 * A private pm2 (its own PM2_HOME in a temporary folder, so it never touches a pm2 the machine
 * runs) driving sockfleet through the real `pm2` CLI. Every process it leads to (the daemon, the
 * sockfleet primary, its workers) is remembered and killed by PID in {@link Pm2.dispose}.
 */
export class Pm2 {
  readonly home = fs.mkdtempSync(path.join(os.tmpdir(), "sockfleet-pm2-"));
  readonly logDir = path.join(this.home, "app-logs");
  private readonly seenPids = new Set<number>();

  constructor(private readonly env: NodeJS.ProcessEnv = {}) {}

  /** Runs `pm2 ARGS...` to completion; rejects with its output on a non-zero exit. */
  async run(args: string[], env: NodeJS.ProcessEnv = {}, ms = 60_000): Promise<string> {
    const child = spawnTracked(process.execPath, [PM2, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...this.env, ...env, PM2_HOME: this.home, SOCKFLEET_LOG_DIR: this.logDir },
    });
    let output = "";
    child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
    try {
      const { code } = await waitForExit(child, ms);
      if (code !== 0) throw new Error(`pm2 ${args.join(" ")} exited with ${code}:\n${output}`);
      return output;
    } finally {
      await killTree(child);
      this.remember();
    }
  }

  /** The processes pm2 manages, from `pm2 jlist`. */
  async list(): Promise<Array<{ name: string; pid: number; status: string; restarts: number }>> {
    const text = await this.run(["jlist"]);
    const start = text.indexOf("[");
    const apps = JSON.parse(text.slice(start)) as Array<{ name: string; pid: number; pm2_env: { status: string; restart_time: number } }>;
    const list = apps.map((a) => ({ name: a.name, pid: a.pid, status: a.pm2_env.status, restarts: a.pm2_env.restart_time }));
    for (const app of list) if (app.pid) this.seenPids.add(app.pid);
    return list;
  }

  daemonPid(): number | undefined {
    try {
      return Number(fs.readFileSync(path.join(this.home, "pm2.pid"), "utf8").trim()) || undefined;
    } catch {
      return undefined;
    }
  }

  /** sockfleet's JSON log lines, as pm2 wrote them to the out file. */
  logs(): LogLine[] {
    let text: string;
    try {
      text = fs.readFileSync(path.join(this.logDir, "sockfleet.out.log"), "utf8");
    } catch {
      return [];
    }
    const lines = text.split("\n").filter(Boolean).map((line): LogLine => {
      try {
        return JSON.parse(line) as LogLine;
      } catch {
        return { msg: "(not json)", text: line };
      }
    });
    for (const line of lines) if (line.msg === "worker ready" && typeof line.workerPid === "number") this.seenPids.add(line.workerPid);
    return lines;
  }

  waitForLog(match: (line: LogLine) => boolean, ms = 10_000, from = 0): Promise<LogLine> {
    return waitUntil(`a pm2 log line matching ${match.toString()}`, () => this.logs().slice(from).find(match), ms, 50);
  }

  /** Every process pm2 led to that is still alive. */
  alive(): number[] {
    this.remember();
    this.logs();
    return [...this.seenPids].filter(isAlive);
  }

  /** Kills by PID whatever is left (daemon, primary, workers) and removes PM2_HOME. */
  dispose(): void {
    for (const pid of this.alive()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    fs.rmSync(this.home, { recursive: true, force: true });
  }

  private remember(): void {
    const daemon = this.daemonPid();
    if (daemon) this.seenPids.add(daemon);
  }
}
