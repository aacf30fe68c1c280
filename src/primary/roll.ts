import type { Logger } from "../observability/logger";
import type { Supervisor } from "./supervisor";

/** A replacement worker that is not ready within this time fails the roll (the old one keeps serving). */
export const REPLACEMENT_READY_TIMEOUT_MS = 30_000;

export type RollOutcome = "complete" | "aborted";

/** What the rest of the primary learns about a roll (balancer preferences, metrics). */
export interface RollHooks {
  /** A roll begins: the workers now serving are all to be replaced. */
  started?(): void;
  /** One slot has its new worker, and its old one has exited. */
  replaced?(): void;
  /** The roll is over, complete or aborted. */
  finished?(outcome: RollOutcome): void;
}

/**
 * Rolling restart: replaces the workers one slot at a time (see {@link Supervisor.replace}), so at
 * most one worker's clients reconnect at any moment and every slot always has a serving worker.
 * New workers load the code now on disk: this is how a deploy ships without dropping the host.
 *
 * A trigger during a roll is not lost: one more roll follows, since the code on disk may have
 * changed after the current roll replaced some slots.
 */
export class RollingRestart {
  private running?: Promise<void>;
  private again = false;

  constructor(
    private readonly supervisor: Supervisor,
    private readonly logger: Logger,
    private readonly hooks: RollHooks = {},
  ) {}

  get inProgress(): boolean {
    return this.running !== undefined;
  }

  /** Starts a roll, or queues one more if a roll is running. Resolves when no roll is left to do. */
  trigger(reason: string): Promise<void> {
    if (this.running) {
      this.again = true;
      this.logger.info({ reason }, "rolling restart already running; another one follows it");
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          if ((await this.rollOnce(reason)) === "aborted") break;
        } while (this.again);
      } finally {
        this.running = undefined;
        this.again = false;
      }
    })();
    return this.running;
  }

  private async rollOnce(reason: string): Promise<RollOutcome> {
    this.hooks.started?.();
    const outcome = await this.replaceAll(reason);
    this.hooks.finished?.(outcome);
    return outcome;
  }

  private async replaceAll(reason: string): Promise<RollOutcome> {
    const started = Date.now();
    const slots = this.supervisor.slotCount;
    this.logger.info({ reason, workers: slots }, "rolling restart started");
    let replaced = 0;
    for (let index = 0; index < slots; index++) {
      const outcome = await this.supervisor.replace(index, REPLACEMENT_READY_TIMEOUT_MS);
      if (this.supervisor.isClosing()) {
        this.logger.info({ replaced }, "rolling restart stopped: the host is shutting down");
        return "aborted";
      }
      if (outcome === "failed") {
        this.logger.error({ slot: index, replaced }, "rolling restart aborted: a new worker failed to start; the remaining workers keep running the old code");
        return "aborted";
      }
      if (outcome === "replaced") {
        replaced++;
        this.hooks.replaced?.();
      }
    }
    this.logger.info({ replaced, durationMs: Date.now() - started }, "rolling restart complete");
    return "complete";
  }
}
