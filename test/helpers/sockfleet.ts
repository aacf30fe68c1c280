import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { describeProcess, isAlive, killTree, spawnTracked, waitForExit } from "./processes";
import { waitUntil } from "./wait";

export const CLI = path.resolve(__dirname, "..", "..", "src", "cli.js");

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface StartOptions {
  workers?: number;
  app?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** A command that execs node in its own process (so the pid stays the host's), e.g. ["prlimit", "--nofile=1000:2000"]. */
  launcher?: string[];
  /** How long to wait for the ready line. */
  readyMs?: number;
}

/** A real sockfleet host (primary + workers) started through the CLI on a free port of 127.0.0.1. */
export class SockfleetHost {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  port = 0;

  private constructor(
    readonly child: ChildProcess,
    readonly workers: number,
  ) {
    createInterface({ input: child.stdout! }).on("line", (line) => {
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.logs.push({ msg: "(not json)", text: line });
      }
    });
    createInterface({ input: child.stderr! }).on("line", (line) => this.stderr.push(line));
  }

  static async start(options: StartOptions = {}): Promise<SockfleetHost> {
    const args = [CLI, "--port", "0", "--host", "127.0.0.1", "--workers", String(options.workers ?? 2)];
    if (options.app) args.push("--app", options.app);
    args.push(...(options.args ?? []));
    const [command, ...prefix] = [...(options.launcher ?? []), process.execPath];
    const child = spawnTracked(command!, [...prefix, ...args], {
      env: { ...process.env, LOG_FORMAT: "json", LOG_LEVEL: "info", ...options.env },
    });
    const host = new SockfleetHost(child, options.workers ?? 2);
    try {
      const ready = await host.waitForLog((l) => l.msg === "ready", options.readyMs ?? 20_000);
      host.port = ready.port as number;
    } catch (err) {
      await killTree(child);
      throw new Error(`${(err as Error).message}\nstderr: ${host.stderr.join("\n")}\nlogs: ${host.logs.map((l) => JSON.stringify(l)).join("\n")}`);
    }
    return host;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  waitForLog(match: (line: LogLine) => boolean, ms = 10_000, from = 0): Promise<LogLine> {
    return waitUntil(`a log line matching ${match.toString()}`, () => {
      const line = this.logs.slice(from).find(match);
      if (line) return line;
      if (this.child.exitCode !== null) throw new Error(`sockfleet exited with ${this.child.exitCode}: ${this.stderr.join("\n")}`);
      return undefined;
    }, ms);
  }

  /** Pids of the workers currently alive, from the primary's "worker ready" lines. */
  workerPids(): number[] {
    const pids = this.logs.filter((l) => l.msg === "worker ready").map((l) => l.workerPid as number);
    return [...new Set(pids)].filter(isAlive);
  }

  async fetch(pathname: string): Promise<Response> {
    return fetch(`${this.url}${pathname}`);
  }

  /** Graceful stop: SIGTERM, then the exit code; kills the tree if it does not exit in `ms`. */
  async stop(ms = 30_000): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill("SIGTERM");
    try {
      return (await waitForExit(this.child, ms)).code;
    } catch (err) {
      // A host that outlives its bounded stop is a defect: say what it was doing before killing it.
      const logs = this.logs.slice(-25).map((l) => JSON.stringify(l)).join("\n");
      throw new Error(`${(err as Error).message}\n${describeProcess(this.pid)}\nlast logs:\n${logs}\nstderr: ${this.stderr.slice(-10).join("\n")}`);
    } finally {
      await killTree(this.child);
    }
  }
}

/** Runs the CLI to completion (for configuration errors) and returns its exit code and output. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, ms = 10_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnTracked(process.execPath, [CLI, ...args], { env: { ...process.env, LOG_FORMAT: "json", ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  try {
    const { code } = await waitForExit(child, ms);
    return { code, stdout, stderr };
  } finally {
    await killTree(child);
  }
}

/** Path of a compiled TypeScript fixture app (test/fixtures/NAME.ts). */
export function compiledFixture(name: string): string {
  return path.resolve(__dirname, "..", "fixtures", `${name}.js`);
}

/** Path of a plain JavaScript fixture app (test/fixtures/NAME, .mjs or .cjs). */
export function sourceFixture(name: string): string {
  return path.resolve(__dirname, "..", "..", "..", "test", "fixtures", name);
}
