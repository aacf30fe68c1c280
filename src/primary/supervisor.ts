import cluster, { type Worker } from "node:cluster";
import { EventEmitter } from "node:events";
import path from "node:path";
import type { Config } from "../config/schema";
import { isSockfleetMessage, WORKER_CONFIG_ENV, type ToPrimary, type ToWorker } from "../ipc/messages";
import type { Logger } from "../observability/logger";
import type { RedisTierStatus } from "../tiers/redis/client";
import { CRASH_WINDOW_MS, CrashBackoff } from "./crash-backoff";

interface Slot {
  index: number;
  worker?: Worker;
  /** The worker a rolling restart is replacing, serving until `worker` (its replacement) is ready. */
  previous?: Worker;
  ready: boolean;
  crashes: CrashBackoff;
  respawnTimer?: NodeJS.Timeout;
  /** Given up: crash loop or start-up failure before the host was ever ready. */
  failed: boolean;
}

export interface SupervisorEvents {
  /** A worker serves (its slot may have had an older one). */
  "worker-ready": [worker: Worker];
  /** A worker is gone, planned or not. */
  "worker-exit": [worker: Worker, crashed: boolean];
  /** A replaced worker starts draining: it keeps its sessions but must get no new ones. */
  "worker-draining": [worker: Worker];
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
  /** The host drains (scale-in): it stays up but is never ready again. */
  private draining = false;
  private everReady = false;
  private hostReady = false;
  private redisStatus: RedisTierStatus | undefined;
  /** Replaced workers that are draining; they serve their remaining clients until they exit. */
  private readonly retiring = new Set<Worker>();

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    /** Extra environment for every worker (for example the data channel's path). */
    private readonly workerEnv: Record<string, string> = {},
  ) {
    super();
    this.slots = Array.from({ length: config.workers }, (_, index) => ({ index, ready: false, crashes: new CrashBackoff(), failed: false }));
    cluster.setupPrimary({
      exec: path.join(__dirname, "..", "worker", "main.js"),
      // JSON on purpose: the IPC channel carries control messages and connection hand-overs only
      // (binary data travels on the data channel), and Node's JSON channel is the long-proven path
      // for passing socket handles. A hand-over's first bytes travel base64-encoded.
      serialization: "json",
      args: [],
    });
  }

  start(): void {
    for (const slot of this.slots) this.fork(slot);
  }

  /** Live workers, in slot order, then those being replaced or draining (they still serve clients). */
  workers(): Worker[] {
    const live: Worker[] = [];
    for (const slot of this.slots) if (slot.worker && !slot.worker.isDead()) live.push(slot.worker);
    for (const slot of this.slots) if (slot.previous && !slot.previous.isDead()) live.push(slot.previous);
    for (const worker of this.retiring) if (!worker.isDead()) live.push(worker);
    return live;
  }

  /** The hosts tier's state changed: every worker's /readyz reports it. */
  setRedisStatus(status: RedisTierStatus): void {
    if (status === this.redisStatus) return;
    this.redisStatus = status;
    for (const worker of this.workers()) this.send(worker, this.hostState());
  }

  private hostState(): ToWorker {
    return this.redisStatus === undefined
      ? { sf: "host-state", ready: this.hostReady }
      : { sf: "host-state", ready: this.hostReady, redis: this.redisStatus };
  }

  get slotCount(): number {
    return this.slots.length;
  }

  /**
   * Rolling restart of one slot: forks a new worker (running the code now on disk) next to the
   * serving one, waits until it is ready, then drains the old one and waits for it to exit. The
   * slot counts as ready throughout, so the host stays ready. If the new worker fails to start
   * within `readyTimeoutMs`, it is killed and the old one keeps serving: a bad deploy stops here.
   */
  async replace(index: number, readyTimeoutMs: number): Promise<"replaced" | "failed" | "skipped"> {
    const slot = this.slots[index];
    const old = slot.worker;
    // An empty or still-starting slot gets a fresh worker (new code) anyway.
    if (this.closing || !old || !slot.ready || slot.previous) return "skipped";
    slot.previous = old;
    const fresh = this.fork(slot, true);
    if (!(await this.readyOrExit(fresh, readyTimeoutMs))) {
      if (!fresh.isDead()) {
        this.logger.error({ worker: fresh.id, slot: slot.index, timeoutMs: readyTimeoutMs }, "replacement worker not ready in time, killing it");
        const exited = new Promise((resolve) => fresh.once("exit", resolve));
        fresh.process.kill("SIGKILL");
        await exited;
      }
      return "failed";
    }
    slot.previous = undefined;
    await this.retire(old);
    this.logger.info({ slot: slot.index, replaced: old.id, by: fresh.id, workerPid: fresh.process.pid }, "worker replaced");
    return "replaced";
  }

  /** Slots with more than the crash-loop threshold of crashes in the last window. */
  crashLoopingSlots(): number {
    const now = Date.now();
    return this.slots.filter((s) => s.crashes.looping(now)).length;
  }

  isHostReady(): boolean {
    return this.hostReady;
  }

  isClosing(): boolean {
    return this.closing;
  }

  /** The host drains: /readyz answers 503 from now on, so balancers in front move traffic away. */
  setDraining(): void {
    this.draining = true;
    this.updateHostState();
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

  /** `replacing`: the slot's current worker serves on, so the slot stays ready until this one is. */
  private fork(slot: Slot, replacing = false): Worker {
    if (!replacing) slot.ready = false;
    const worker = cluster.fork({ ...this.workerEnv, [WORKER_CONFIG_ENV]: JSON.stringify(this.config) });
    slot.worker = worker;
    this.logger.debug({ worker: worker.id, slot: slot.index }, "worker forked");
    worker.on("message", (message: unknown) => {
      if (!isSockfleetMessage(message)) return;
      this.onMessage(slot, worker, message as ToPrimary);
    });
    worker.on("exit", (code, signal) => this.onExit(slot, worker, code, signal));
    // An IPC error on a dying worker is reported through "exit"; nothing to add here.
    worker.on("error", (err) => this.logger.debug({ err, worker: worker.id }, "worker channel error"));
    return worker;
  }

  /** Resolves true once `worker` reports ready, false if it exits first or `ms` pass. */
  private readyOrExit(worker: Worker, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (ready: boolean): void => {
        clearTimeout(timer);
        this.off("worker-ready", onReady);
        worker.off("exit", onExit);
        resolve(ready);
      };
      const onReady = (ready: Worker): void => {
        if (ready === worker) done(true);
      };
      const onExit = (): void => done(false);
      const timer = setTimeout(() => done(false), ms);
      this.on("worker-ready", onReady);
      worker.once("exit", onExit);
    });
  }

  /** Drains a replaced worker and resolves when it has exited; killed if it overruns its bound. */
  private async retire(worker: Worker): Promise<void> {
    if (worker.isDead()) return;
    this.retiring.add(worker);
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    this.emit("worker-draining", worker);
    const spreadMs = this.config.drainTime;
    this.logger.info({ worker: worker.id, workerPid: worker.process.pid, spreadMs }, "worker draining");
    this.send(worker, { sf: "drain", spreadMs });
    const boundMs = spreadMs + this.config.shutdownTimeout;
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      exited.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), boundMs))),
    ]);
    clearTimeout(timer);
    if (late) {
      this.logger.warn({ worker: worker.id, workerPid: worker.process.pid, boundMs }, "draining worker did not exit in time, killing it");
      worker.process.kill("SIGKILL");
      await exited;
    }
  }

  private onMessage(slot: Slot, worker: Worker, message: ToPrimary): void {
    switch (message.sf) {
      case "ready":
        if (slot.worker !== worker) return;
        slot.ready = true;
        this.logger.info({ worker: worker.id, slot: slot.index, workerPid: worker.process.pid }, "worker ready");
        this.emit("worker-ready", worker);
        this.send(worker, this.hostState());
        this.updateHostState();
        break;
      case "fatal":
        this.logger.error({ worker: worker.id, slot: slot.index, reason: message.message }, "worker cannot start");
        // Before the host ever served this is a broken app or deploy. Later (say the app needs a
        // service that is down) the exit that follows is handled like a crash: retried with backoff.
        if (!this.everReady) this.emit("fatal", message.message);
        break;
      default:
        this.emit("message", worker, message);
        break;
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    const retired = this.retiring.delete(worker);
    const crashed = !this.closing && !retired && !worker.exitedAfterDisconnect;
    this.emit("worker-exit", worker, crashed);
    if (slot.previous === worker) {
      // The worker being replaced died while its replacement starts: the slot serves again once that is ready.
      slot.previous = undefined;
      slot.ready = false;
      this.logger.warn({ worker: worker.id, slot: slot.index, code, signal }, "worker died while being replaced");
      this.updateHostState();
      return;
    }
    if (slot.worker === worker && slot.previous && !this.closing) {
      // A replacement failed to start: the old worker keeps the slot, nothing is respawned.
      slot.worker = slot.previous;
      slot.previous = undefined;
      slot.ready = true;
      slot.failed = false;
      this.logger.error({ worker: worker.id, slot: slot.index, code, signal, kept: slot.worker.id }, "replacement worker failed to start; the old worker keeps serving");
      return;
    }
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = false;
    this.updateHostState();
    if (!crashed) return;

    const { crashes, looping, delayMs } = slot.crashes.crashed();
    if (looping && !this.everReady) {
      slot.failed = true;
      this.logger.error({ slot: slot.index, crashes, windowMs: CRASH_WINDOW_MS, code, signal }, "crash loop before the host was ready: slot is not respawned");
      if (this.slots.every((s) => s.failed)) this.emit("exhausted");
      return;
    }
    const details = { worker: worker.id, slot: slot.index, code, signal, respawnInMs: delayMs, crashes, windowMs: CRASH_WINDOW_MS };
    if (looping) this.logger.error(details, "crash loop: worker respawned at the longest backoff");
    else this.logger.warn(details, "worker crashed");
    slot.respawnTimer = setTimeout(() => {
      if (!this.closing) this.fork(slot);
    }, delayMs);
  }

  private updateHostState(): void {
    const ready = !this.closing && !this.draining && this.slots.every((s) => s.ready);
    if (ready === this.hostReady) return;
    this.hostReady = ready;
    if (ready) this.everReady = true;
    for (const worker of this.workers()) this.send(worker, this.hostState());
    this.emit("host-state", ready);
  }
}
