import { monitorEventLoopDelay } from "node:perf_hooks";
import { Gauge, type Registry } from "prom-client";

/** Resolution of the event-loop delay histogram, in milliseconds. */
const RESOLUTION_MS = 10;

/**
 * How busy one process is, measured between two scrapes (so a Prometheus scrape interval is the
 * window): the longest event-loop delay (`sockfleet_event_loop_lag_seconds`) and the CPU it used
 * per second of wall time (`sockfleet_cpu_ratio`, 1 = one core). `labels` tells processes apart
 * in the host's merged scrape (workers set `worker` as a default label; the primary passes it).
 */
export function registerProcessHeadroom(registry: Registry, labels: Record<string, string> = {}): void {
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  let lastCpu = process.cpuUsage();
  let lastAt = process.hrtime.bigint();
  const labelNames = Object.keys(labels);
  new Gauge({
    name: "sockfleet_event_loop_lag_seconds",
    help: "Longest event-loop delay of this process since the previous scrape (timers late by this much; above ~0.1 s clients feel it).",
    labelNames,
    registers: [registry],
    collect() {
      // The histogram counts the sampling timer's own resolution in every delay.
      this.set(labels, delay.count > 0 ? Math.max(0, delay.max / 1e9 - RESOLUTION_MS / 1000) : 0);
      delay.reset();
    },
  });
  new Gauge({
    name: "sockfleet_cpu_ratio",
    help: "CPU time this process used per second since the previous scrape (user + system; 1 is one whole core).",
    labelNames,
    registers: [registry],
    collect() {
      const now = process.hrtime.bigint();
      const cpu = process.cpuUsage(lastCpu);
      const wallUs = Number(now - lastAt) / 1000;
      lastCpu = process.cpuUsage();
      lastAt = now;
      this.set(labels, wallUs > 0 ? (cpu.user + cpu.system) / wallUs : 0);
    },
  });
}
