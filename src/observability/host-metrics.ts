import type { Worker } from "node:cluster";
import { AggregatorRegistry, collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { MetricsSnapshot, ToWorker } from "../ipc/messages";

/** A worker that has not answered a scrape within this time is left out of it (and counted as missing). */
export const SCRAPE_TIMEOUT_MS = 2_000;

interface Scrape {
  expected: Set<number>;
  snapshots: MetricsSnapshot[];
  started: number;
  timer: NodeJS.Timeout;
  done: () => void;
}

/** How the host's metrics reach its workers and learn about the host; wired by the primary. */
export interface HostMetricsSource {
  workers(): Worker[];
  send(worker: Worker, message: ToWorker): void;
  hostReady(): boolean;
  /** Sessions per worker id, as the balancer counts them. */
  sessions(): Record<number, number>;
  /** Worker slots in a crash loop now (see Supervisor). */
  crashLoopingSlots(): number;
}

/**
 * The metrics of one host, in one Prometheus scrape: the primary's own series (relay, restarts,
 * balancer) and every worker's registry, fetched over IPC at scrape time and merged with
 * prom-client's cluster aggregation. Worker series carry a `worker` label, so they stay distinct.
 *
 * Each scrape is a request to every live worker, settled by the last answer, by a worker exiting
 * (a worker replaced during a roll must not stall the scrape) or by {@link SCRAPE_TIMEOUT_MS}.
 *
 * Other tiers add their series to {@link HostMetrics.registry}: the Redis hosts tier is expected to
 * register e.g. `sockfleet_redis_connected` (gauge), `sockfleet_redis_reconnects_total` and
 * `sockfleet_hosts_messages_relayed_total` there; they appear in the same scrape.
 */
export class HostMetrics {
  /** The primary's registry; tiers living in the primary register their metrics here. */
  readonly registry = new Registry();
  private readonly restarts: Counter<"reason">;
  private readonly relayed: Counter<"kind">;
  private readonly relayLag: Gauge<"worker">;
  private readonly missing: Gauge<string>;
  private readonly scrapes = new Map<number, Scrape>();
  private nextId = 1;

  constructor(private readonly source: HostMetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, labels: { worker: "primary" } });
    this.restarts = new Counter({ name: "sockfleet_worker_restarts_total", help: 'Workers replaced, by reason: "crash" (respawned after an unplanned exit) or "roll" (rolling restart).', labelNames: ["reason"], registers });
    this.restarts.inc({ reason: "crash" }, 0);
    this.restarts.inc({ reason: "roll" }, 0);
    this.relayed = new Counter({ name: "sockfleet_relay_messages_total", help: 'Cluster adapter messages the primary relayed between this host\'s workers (each counted once, whatever its number of recipients): "broadcast" (broadcasts, requests and heartbeats, to every other worker) or "response" (to the worker that asked).', labelNames: ["kind"], registers });
    this.relayed.inc({ kind: "broadcast" }, 0);
    this.relayed.inc({ kind: "response" }, 0);
    this.relayLag = new Gauge({ name: "sockfleet_relay_lag_seconds", help: "Round trip of the last scrape request between the primary and each worker (IPC control channel): the queueing delay a relayed message also sees in both event loops.", labelNames: ["worker"], registers });
    this.missing = new Gauge({ name: "sockfleet_scrape_missing_workers", help: `Workers that did not answer this scrape within ${SCRAPE_TIMEOUT_MS} ms.`, registers });
    new Gauge({
      name: "sockfleet_workers",
      help: "Worker processes alive on this host (a rolling restart briefly runs one more).",
      registers,
      collect() {
        this.set(source.workers().length);
      },
    });
    new Gauge({
      name: "sockfleet_crash_looping_slots",
      help: "Worker slots with more than 10 crashes in the last 60 s; they are still respawned, every 10 s.",
      registers,
      collect() {
        this.set(source.crashLoopingSlots());
      },
    });
    new Gauge({
      name: "sockfleet_host_ready",
      help: "1 when every worker slot of this host serves (what /readyz reports).",
      registers,
      collect() {
        this.set(source.hostReady() ? 1 : 0);
      },
    });
    new Gauge({
      name: "sockfleet_balancer_sessions",
      help: "Sessions per worker as the primary's sticky balancer counts them.",
      labelNames: ["worker"],
      registers,
      collect() {
        this.reset();
        for (const [worker, count] of Object.entries(source.sessions())) this.set({ worker }, count);
      },
    });
  }

  workerRestarted(reason: "crash" | "roll"): void {
    this.restarts.inc({ reason });
  }

  messageRelayed(kind: "broadcast" | "response"): void {
    this.relayed.inc({ kind });
  }

  /** A worker answered a scrape request. */
  onSnapshot(worker: Worker, id: number, snapshot: MetricsSnapshot): void {
    const scrape = this.scrapes.get(id);
    if (!scrape || !scrape.expected.delete(worker.id)) return;
    scrape.snapshots.push(snapshot);
    this.relayLag.set({ worker: String(worker.id) }, (Date.now() - scrape.started) / 1000);
    if (scrape.expected.size === 0) scrape.done();
  }

  /** A worker exited: the scrapes waiting for it settle without it. */
  workerGone(id: number): void {
    this.relayLag.remove({ worker: String(id) });
    for (const scrape of this.scrapes.values()) {
      if (scrape.expected.delete(id) && scrape.expected.size === 0) scrape.done();
    }
  }

  /** One scrape: the Prometheus text of the whole host. */
  async render(): Promise<{ contentType: string; body: string }> {
    const snapshots = await this.gather();
    const aggregated = AggregatorRegistry.aggregate([...snapshots, (await this.registry.getMetricsAsJSON()) as MetricsSnapshot]);
    return { contentType: aggregated.contentType, body: await aggregated.metrics() };
  }

  private gather(): Promise<MetricsSnapshot[]> {
    const workers = this.source.workers().filter((w) => w.isConnected());
    if (workers.length === 0) return Promise.resolve([]);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const scrape: Scrape = {
        expected: new Set(workers.map((w) => w.id)),
        snapshots: [],
        started: Date.now(),
        timer: setTimeout(() => scrape.done(), SCRAPE_TIMEOUT_MS),
        done: () => {
          clearTimeout(scrape.timer);
          this.scrapes.delete(id);
          this.missing.set(scrape.expected.size);
          resolve(scrape.snapshots);
        },
      };
      this.scrapes.set(id, scrape);
      for (const worker of workers) this.source.send(worker, { sf: "metrics-request", id });
    });
  }
}
