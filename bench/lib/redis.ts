/** A private redis-server per run, on a free port, never the shared one on 6379. */
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { freePort, respCommand } from "./net.js";
import { spawnTracked, stopTree } from "./procs.js";

export interface RedisCounters {
  /** used_cpu_sys + used_cpu_user, seconds. */
  cpu: number;
  /** Messages written: cmdstat_publish calls (plus spublish and stream appends). */
  publishes: number;
  totalCommands: number;
  netOutputBytes: number;
}

/** INFO commandstats: command (e.g. "xread", "client|list") -> calls and microseconds spent in it. */
export type RedisCommandStats = Map<string, { calls: number; usec: number }>;

export class RedisServer {
  private constructor(
    readonly port: number,
    readonly child: ChildProcess,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static available(): boolean {
    try {
      execFileSync("redis-server", ["--version"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  }

  static version(): string {
    try {
      const out = execFileSync("redis-server", ["--version"], { encoding: "utf8" });
      return /v=([\d.]+)/.exec(out)?.[1] ?? out.trim();
    } catch {
      return "not installed";
    }
  }

  static async start(): Promise<RedisServer> {
    const port = await freePort();
    const child = spawnTracked("redis-server", [
      "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
      "--protected-mode", "yes", "--loglevel", "warning",
    ]);
    child.stdout?.resume();
    child.stderr?.resume();
    const deadline = Date.now() + 5000;
    for (;;) {
      try {
        if ((await respCommand(port, ["PING"], 500)) === "PONG") return new RedisServer(port, child);
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async counters(): Promise<RedisCounters> {
    const text = await respCommand(this.port, ["INFO", "everything"]);
    const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(text)?.[1] ?? 0);
    const calls = (cmd: string): number => Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, "m").exec(text)?.[1] ?? 0);
    return {
      cpu: field("used_cpu_sys") + field("used_cpu_user"),
      // sockfleet's bridge appends recoverable broadcasts to a stream instead of publishing them; on
      // one node the append is one script doing an XADD and the PUBLISH of the entry on the log's
      // feed (one message written, two inner calls in commandstats): one per EVAL is taken off.
      publishes: calls("publish") + calls("spublish") + calls("xadd") - calls("eval"),
      totalCommands: field("total_commands_processed"),
      netOutputBytes: field("total_net_output_bytes"),
    };
  }

  async commandStats(): Promise<RedisCommandStats> {
    const text = await respCommand(this.port, ["INFO", "commandstats"]);
    const out: RedisCommandStats = new Map();
    for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) out.set(m[1]!, { calls: Number(m[2]), usec: Number(m[3]) });
    return out;
  }

  stop(): Promise<void> {
    return stopTree(this.child, 2000);
  }
}
