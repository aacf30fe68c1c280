import type { Logger } from "../observability/logger";

export type DrainState = "serving" | "draining" | "drained";

/** What a host drain acts on; wired by the primary. */
export interface DrainTargets {
  /** Refuse new sessions and report not ready (balancer, supervisor). */
  stopTakingSessions(): void;
  /** Ids of the workers serving now. */
  workers(): number[];
  /** Tell worker `id` to send its clients away, spread over `spreadMs`. */
  drainWorker(id: number, spreadMs: number): void;
}

/**
 * Scale-in of one host (POST /drain on the admin listener, or SIGUSR2): the host stops taking new
 * sessions and reports not ready, then every worker tells its clients to reconnect, a few at a
 * time over --host-drain-time; they land on other hosts and, with connection-state recovery,
 * keep their sessions there. Once every worker has answered (or exited), the host is "drained":
 * it stays up, not ready and without clients, until it is stopped (SIGTERM).
 */
export class HostDrain {
  private state: DrainState = "serving";
  private started = 0;
  private readonly waiting = new Set<number>();
  private clients = 0;

  constructor(
    private readonly targets: DrainTargets,
    private readonly spreadMs: number,
    private readonly logger: Logger,
  ) {}

  get current(): DrainState {
    return this.state;
  }

  /** Starts the drain; a second call changes nothing. Returns what the admin endpoint answers. */
  start(reason: string): { state: DrainState; spreadMs: number } {
    if (this.state === "serving") {
      this.state = "draining";
      this.started = Date.now();
      this.targets.stopTakingSessions();
      const workers = this.targets.workers();
      this.logger.info({ reason, workers: workers.length, spreadMs: this.spreadMs }, "host draining: new sessions refused, clients sent to other hosts");
      for (const id of workers) {
        this.waiting.add(id);
        this.targets.drainWorker(id, this.spreadMs);
      }
      this.settleIfDone();
    }
    return { state: this.state, spreadMs: this.spreadMs };
  }

  /** Worker `id` has sent its `clients` away. */
  workerDrained(id: number, clients: number): void {
    if (!this.waiting.delete(id)) return;
    this.clients += clients;
    this.settleIfDone();
  }

  /** Worker `id` exited: nothing more to wait for from it. */
  workerGone(id: number): void {
    if (this.waiting.delete(id)) this.settleIfDone();
  }

  private settleIfDone(): void {
    if (this.state !== "draining" || this.waiting.size > 0) return;
    this.state = "drained";
    this.logger.info({ clients: this.clients, durationMs: Date.now() - this.started }, "host drained: it serves no clients and stays not ready until stopped");
  }
}
