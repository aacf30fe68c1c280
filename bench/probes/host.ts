/** A sockfleet host started for one probe, with what a probe reads of it: pids, RSS, crashes, metrics. */
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { spawnTracked, stopTree } from "../lib/procs.js";
import { sample } from "../lib/procstat.js";

const CLI = path.resolve(__dirname, "..", "..", "src", "cli.js");

export class ProbeHost {
  readonly lines: Array<Record<string, unknown>> = [];
  port = 0;
  adminPort = 0;

  private constructor(readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on("line", (text) => {
      try {
        this.lines.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        /* not a log line */
      }
    });
  }

  /** 1 host x 2 workers with the defaults, unless `args` says otherwise. */
  static async start(args: string[] = []): Promise<ProbeHost> {
    const child = spawnTracked(process.execPath, [CLI, "--port", "0", "--host", "127.0.0.1", "--workers", "2", "--admin-port", "0", ...args], { LOG_FORMAT: "json" });
    const host = new ProbeHost(child);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const ready = host.lines.find((l) => l.msg === "ready");
      if (ready) {
        host.port = ready.port as number;
        host.adminPort = ready.adminPort as number;
        return host;
      }
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`probe host did not start (exit ${child.exitCode})`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Worker crashes the primary logged (crash loops included). */
  crashes(): number {
    return this.lines.filter((l) => l.msg === "worker crashed" || String(l.msg).startsWith("crash loop")).length;
  }

  workerPids(): number[] {
    return [...new Set(this.lines.filter((l) => l.msg === "worker ready").map((l) => l.workerPid as number))].filter((pid) => sample(pid) !== undefined);
  }

  /** RSS in MB of the primary and each live worker. */
  rssMb(): number[] {
    return [this.child.pid!, ...this.workerPids()].map((pid) => Math.round((sample(pid)?.rss ?? 0) / 1_048_576));
  }

  /** The sum of a metric's samples on the admin port (optionally those whose labels contain `match`). */
  async metric(name: string, match = ""): Promise<number | undefined> {
    try {
      const text = await (await fetch(`http://127.0.0.1:${this.adminPort}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
      let sum: number | undefined;
      for (const line of text.split("\n")) {
        if (!line.startsWith(name) || !line.includes(match)) continue;
        const rest = line.slice(name.length);
        if (rest[0] !== " " && rest[0] !== "{") continue;
        sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
      }
      return sum;
    } catch {
      return undefined;
    }
  }

  stop(): Promise<void> {
    return stopTree(this.child, 5_000);
  }
}
