import type { LogLine, SockfleetHost } from "../helpers/sockfleet";
import type { Tally } from "./tally";

const CRASH_MESSAGES = new Set(["uncaught exception, worker exits", "worker crashed", "crash loop: slot is not respawned", "worker died while being replaced"]);

const isCrash = (line: LogLine): boolean => CRASH_MESSAGES.has(line.msg ?? "") || (line.level ?? 0) >= 60;

/** Watches a host for crashes: its crash log lines, and its primary exiting. */
export class CrashWatch {
  private scanned = 0;
  private seen = false;
  private exitedAt?: number;

  constructor(private readonly host: SockfleetHost) {
    host.child.once("exit", () => (this.exitedAt = Date.now()));
  }

  /** True once the host logged a crash or its primary exited (scans only lines added since the last call). */
  crashed(): boolean {
    const logs = this.host.logs;
    for (; this.scanned < logs.length && !this.seen; this.scanned++) this.seen = isCrash(logs[this.scanned]);
    return this.seen || this.exitedAt !== undefined;
  }

  /**
   * What the host logged about crashes, each with the hostile packets sent in the second before it,
   * so the input behind it can be named (and replayed from the seed).
   */
  report(tally: Tally): string {
    const lines: string[] = [];
    const sentBefore = (time: number): string[] =>
      tally.sentBefore(time, 1_000).slice(-12).map((r) => `      ${new Date(r.time).toISOString()} ${r.sender} ${r.kind} ${r.preview}`);
    for (const line of this.host.logs.filter(isCrash).slice(0, 6)) {
      const err = line.err as { message?: string; stack?: string } | undefined;
      lines.push(`  ${line.time as string} ${line.msg} ${JSON.stringify({ role: line.role, worker: line.worker, code: line.code, signal: line.signal })}`);
      if (err?.stack) lines.push(...err.stack.split("\n").slice(0, 8).map((s) => `      ${s}`));
      const at = Date.parse(line.time as string);
      lines.push("    logged in the second before:", ...this.warningsBefore(at));
      lines.push("    sent in the second before:", ...sentBefore(at));
    }
    if (this.exitedAt !== undefined) {
      lines.push(`  primary exited: code ${this.host.child.exitCode}, signal ${this.host.child.signalCode}`);
      lines.push(...this.host.stderr.slice(-20).map((s) => `    stderr: ${s}`));
      lines.push(...this.host.logs.slice(-5).map((l) => `    log: ${JSON.stringify(l).slice(0, 400)}`));
      lines.push("    sent in the second before:", ...sentBefore(this.exitedAt));
    }
    return lines.join("\n");
  }

  /** Warnings and errors (not crash lines) the host logged in the second before `time`. */
  private warningsBefore(time: number): string[] {
    return this.host.logs
      .filter((l) => (l.level ?? 0) >= 40 && !isCrash(l) && Date.parse(l.time as string) <= time && Date.parse(l.time as string) >= time - 1_000)
      .slice(-5)
      .map((l) => `      ${JSON.stringify({ ...l, err: (l.err as { message?: string } | undefined)?.message }).slice(0, 300)}`);
  }
}
