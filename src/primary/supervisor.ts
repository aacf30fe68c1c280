import cluster, { type Worker } from "node:cluster";
import { EventEmitter } from "node:events";
import path from "node:path";
import type { Config } from "../config/schema";
import { isSockfleetMessage, WORKER_CONFIG_ENV, type ToPrimary, type ToWorker } from "../ipc/messages";
import type { Logger } from "../observability/logger";

/** Crashes of one slot within this window count towards its backoff and crash-loop limit. */
const CRASH_WINDOW_MS = 60_000;
/** More crashes than this within the window is a crash loop: the slot is not respawned again. */
const MAX_CRASHES_IN_WINDOW = 10;
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 10_000;

interface Slot {
  index: number;
  worker?: Worker;
  ready: boolean;
  crashes: number[];
  respawnTimer?: NodeJS.Timeout;
  /** Given up after a crash loop. */
  failed: boolean;
}

export interface SupervisorEvents {
  /** A worker serves (its slot may have had an older one). */
  "worker-ready": [worker: Worker];
  /** A worker is gone, planned or not. */
  "worker-exit": [worker: Worker, crashed: boolean];
  /** Whole-host readiness changed. */
  "host-state": [ready: boolean];
  /** A worker reported a start-up failure no respawn can fix, before the host was ever ready. */
  fatal: [message: string];
  /** Every slot has given up: the host cannot serve. */
  exhausted: [];
  message: [worker: Worker, message: ToPrimary];
}

/**
 * Forks one worker per slot and keeps every slot filled: crashed workers are replaced with
 * exponential backoff, a crash loop is reported and stops that slot, and planned exits (shutdown)
 * are never respawned. Whole-host readiness is pushed to every worker so any of them can answer
 * /readyz for the host.
 */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly slots: Slot[];
  private closing = false;
  private everReady = false;
  private hostReady = false;

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly onAdapterMessage: (worker: Worker, message: unknown) => boolean,
  ) {
    super();
    this.slots = Array.from({ length: config.workers }, (_, index) => ({ index, ready: false, crashes: [], failed: false }));
    cluster.setupPrimary({
      exec: path.join(__dirname, "..", "worker", "main.js"),
      // Socket handles and binary payloads cross IPC; JSON serialization would break both.
      serialization: "advanced",
      args: [],
    });
  }

  start(): void {
    for (const slot of this.slots) this.fork(slot);
  }

  /** Live workers, in slot order. */
  workers(): Worker[] {
    const live: Worker[] = [];
    for (const slot of this.slots) if (slot.worker && !slot.worker.isDead()) live.push(slot.worker);
    return live;
  }

  isHostReady(): boolean {
    return this.hostReady;
  }

  /** Asks every worker to close gracefully; kills those still alive after the shutdown timeout. */
  async stop(): Promise<void> {
    this.closing = true;
    for (const slot of this.slots) clearTimeout(slot.respawnTimer);
    this.updateHostState();
    const workers = this.workers();
    const exits = workers.map((w) => new Promise<void>((resolve) => (w.isDead() ? resolve() : w.once("exit", () => resolve()))));
    for (const worker of workers) this.send(worker, { sf: "shutdown" });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), this.config.shutdownTimeout)));
    const late = await Promise.race([Promise.all(exits).then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) {
      for (const worker of this.workers()) {
        this.logger.warn({ worker: worker.id, pid: worker.process.pid }, "worker did not close in time, killing it");
        worker.process.kill("SIGKILL");
      }
      await Promise.all(exits);
    }
  }

  send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message, undefined, () => undefined);
  }

  private fork(slot: Slot): void {
    slot.ready = false;
    const worker = cluster.fork({ [WORKER_CONFIG_ENV]: JSON.stringify(this.config) });
    slot.worker = worker;
    this.logger.debug({ worker: worker.id, slot: slot.index }, "worker forked");
    worker.on("message", (message: unknown) => {
      if (this.onAdapterMessage(worker, message)) return;
      if (!isSockfleetMessage(message)) return;
      this.onMessage(slot, worker, message as ToPrimary);
    });
    worker.on("exit", (code, signal) => this.onExit(slot, worker, code, signal));
    // An IPC error on a dying worker is reported through "exit"; nothing to add here.
    worker.on("error", (err) => this.logger.debug({ err, worker: worker.id }, "worker channel error"));
  }

  private onMessage(slot: Slot, worker: Worker, message: ToPrimary): void {
    switch (message.sf) {
      case "ready":
        if (slot.worker !== worker) return;
        slot.ready = true;
        this.logger.info({ worker: worker.id, slot: slot.index, workerPid: worker.process.pid }, "worker ready");
        this.emit("worker-ready", worker);
        this.send(worker, { sf: "host-state", ready: this.hostReady });
        this.updateHostState();
        break;
      case "fatal":
        this.logger.error({ worker: worker.id, slot: slot.index, reason: message.message }, "worker cannot start");
        if (!this.everReady) this.emit("fatal", message.message);
        else slot.failed = true;
        break;
      default:
        this.emit("message", worker, message);
        break;
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    const crashed = !this.closing && !worker.exitedAfterDisconnect;
    this.emit("worker-exit", worker, crashed);
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = false;
    this.updateHostState();
    if (!crashed) return;

    const now = Date.now();
    slot.crashes = slot.crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    slot.crashes.push(now);
    if (slot.failed || slot.crashes.length > MAX_CRASHES_IN_WINDOW) {
      slot.failed = true;
      this.logger.error({ slot: slot.index, crashes: slot.crashes.length, windowMs: CRASH_WINDOW_MS, code, signal }, "crash loop: slot is not respawned");
      if (this.slots.every((s) => s.failed)) this.emit("exhausted");
      return;
    }
    const delay = Math.min(BACKOFF_BASE_MS * 2 ** (slot.crashes.length - 1), BACKOFF_MAX_MS);
    this.logger.warn({ worker: worker.id, slot: slot.index, code, signal, respawnInMs: delay }, "worker crashed");
    slot.respawnTimer = setTimeout(() => {
      if (!this.closing) this.fork(slot);
    }, delay);
  }

  private updateHostState(): void {
    const ready = !this.closing && this.slots.every((s) => s.ready);
    if (ready === this.hostReady) return;
    this.hostReady = ready;
    if (ready) this.everReady = true;
    for (const worker of this.workers()) this.send(worker, { sf: "host-state", ready });
    this.emit("host-state", ready);
  }
}
