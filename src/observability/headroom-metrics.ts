import { Counter, Gauge, type Registry } from "prom-client";
import type { RedisHeadroomValues } from "../tiers/redis/redis-headroom";

/** What the primary's headroom series read at scrape time; wired by the primary. */
export interface HeadroomSource {
  /** Connections the host holds now, and the most it can hold (capacity.ts). */
  connections(): number;
  capacity(): number;
  /** Bytes queued on each worker's data channel, not yet taken by the kernel. */
  dataChannelQueued(): Array<[worker: number, bytes: number]>;
  /** Bridge mode: what Redis holds for this host and how far it lags the shared log. */
  redis?(): RedisHeadroomValues;
}

/**
 * The series an autoscaler and alerts read to see how close a host is to its limits (README
 * "Autoscaling"), and the count of broadcasts missed from other hosts. Worker-side headroom
 * (event-loop lag, CPU) is in metrics.ts.
 */
export class HeadroomMetrics {
  private readonly missed: Counter<"origin">;

  constructor(registry: Registry, source: HeadroomSource) {
    const registers = [registry];
    new Gauge({
      name: "sockfleet_capacity_ratio",
      help: "Connections this host holds over the most it can hold (--max-connections, or workers x the open-file limit): scale out well before 1.",
      registers,
      collect() {
        const capacity = source.capacity();
        this.set(capacity > 0 ? source.connections() / capacity : 0);
      },
    });
    new Gauge({
      name: "sockfleet_data_channel_queued_bytes",
      help: "Bytes the primary has queued on each worker's data channel that the worker has not read yet (a worker that falls behind by --max-channel-bytes is replaced).",
      labelNames: ["worker"],
      registers,
      collect() {
        this.reset();
        for (const [worker, bytes] of source.dataChannelQueued()) this.set({ worker: String(worker) }, bytes);
      },
    });
    this.missed = new Counter({
      name: "sockfleet_redis_missed_messages_total",
      help: "Broadcasts published by another host (label: its --host-id) that never reached this one over Redis pub/sub: Redis cut this host's subscriber off, or a connection dropped.",
      labelNames: ["origin"],
      registers,
    });
    if (!source.redis) return;
    const redis = source.redis;
    new Gauge({
      name: "sockfleet_redis_output_buffer_bytes",
      help: "Output buffer Redis holds for this host's subscriber connection (CLIENT LIST omem, sampled every 2 s; `memory` is tot-mem): past client-output-buffer-limit pubsub, Redis disconnects it.",
      labelNames: ["kind"],
      registers,
      collect() {
        this.reset();
        const sub = redis().subscriber;
        if (!sub) return;
        this.set({ kind: "output" }, sub.outputBytes);
        this.set({ kind: "memory" }, sub.totalBytes);
      },
    });
    new Gauge({
      name: "sockfleet_shared_log_lag_entries",
      help: "Shared log entries appended (by any host) that this host has not read yet (sampled every 2 s).",
      registers,
      collect() {
        this.reset();
        const lag = redis().logLag;
        if (lag) this.set(lag.entries);
      },
    });
    new Gauge({
      name: "sockfleet_shared_log_lag_seconds",
      help: "Age of the newest shared log entry this host has read, against the log's head (sampled every 2 s).",
      registers,
      collect() {
        this.reset();
        const lag = redis().logLag;
        if (lag) this.set(lag.seconds);
      },
    });
  }

  /** Broadcasts from `origin` were missed. */
  missedMessages(origin: string, count: number): void {
    this.missed.inc({ origin }, count);
  }
}
