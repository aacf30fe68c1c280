/** The harness side of a load-generator process: typed requests over IPC. */
import type { ChildProcess } from "node:child_process";
import path from "node:path";
import type {
  IdentifyResult,
  JoinResult,
  LoadgenEnvelope,
  LoadgenReply,
  LoadgenRequest,
  OpenResult,
  PlanResult,
  ReportResult,
  SendResult,
  StormResult,
  UsageResult,
  Who,
} from "../loadgen/messages.js";
import { forkTracked, stopTree } from "./procs.js";

type ResultOf<T extends LoadgenRequest["type"]> = T extends "open"
  ? OpenResult
  : T extends "join"
    ? JoinResult
    : T extends "whoami"
      ? Who[]
      : T extends "send"
        ? SendResult
        : T extends "report"
          ? ReportResult
          : T extends "storm"
            ? StormResult
            : T extends "usage"
              ? UsageResult
              : T extends "close"
                ? number
                : T extends "identify"
                  ? IdentifyResult
                  : T extends "plan-rooms"
                    ? PlanResult
                    : null;

export class LoadGen {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly child: ChildProcess;

  /** `localAddress` is the 127.0.0.x this generator's connections come from. */
  constructor(
    readonly index: number,
    readonly localAddress: string,
  ) {
    const script = path.join(__dirname, "..", "loadgen", "worker.js");
    this.child = forkTracked(script, [], ["--max-old-space-size=4096"]);
    this.child.on("message", (msg: LoadgenReply) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.data);
      else p.reject(new Error(`loadgen ${index}: ${msg.error}`));
    });
    this.child.once("exit", (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`loadgen ${index} exited (${code})`));
      this.pending.clear();
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  request<R extends LoadgenRequest>(req: R, timeoutMs = 120_000): Promise<ResultOf<R["type"]>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`loadgen ${this.index}: ${req.type} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as ResultOf<R["type"]>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      const env: LoadgenEnvelope = { id, req };
      // With a callback, a write to a generator that already died (EPIPE, e.g. when a run is
      // stopped) fails this request instead of surfacing as an unhandled 'error' event.
      this.child.send(env, (error) => {
        if (!error) return;
        this.pending.get(id)?.reject(new Error(`loadgen ${this.index}: ${req.type} not sent: ${error.message}`));
        this.pending.delete(id);
      });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.connected) {
      try {
        await this.request({ type: "exit" }, 2000);
      } catch {
        /* stopped below */
      }
    }
    await stopTree(this.child, 2000);
  }
}
