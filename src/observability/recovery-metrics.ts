import { Counter, Gauge, type Registry } from "prom-client";
import type { HostRecovery } from "../tiers/recovery/host";
import type { StreamOrderStats } from "../tiers/redis/stream-order";

/** The shared log's state, as the Redis bridge reports it. */
export type SharedLogStats = StreamOrderStats & { inStep: boolean; pending: number; queued: number };

type Read = () => Array<[Record<string, string>, number]>;

/** A series whose values are read from elsewhere at scrape time. */
function readSeries(kind: "counter" | "gauge", registry: Registry, name: string, help: string, labelNames: string[], read: Read): void {
  const registers = [registry];
  if (kind === "gauge") {
    new Gauge({ name, help, labelNames, registers, collect() {
      this.reset();
      for (const [labels, value] of read()) this.set(labels, value);
    } });
    return;
  }
  new Counter({ name, help, labelNames, registers, collect() {
    this.reset();
    for (const [labels, value] of read()) this.inc(labels, value);
  } });
}

const readGauge = (registry: Registry, name: string, help: string, labelNames: string[], read: Read): void => readSeries("gauge", registry, name, help, labelNames, read);
const readCounter = (registry: Registry, name: string, help: string, labelNames: string[], read: Read): void => readSeries("counter", registry, name, help, labelNames, read);

/**
 * Connection-state recovery series of one host, read from the primary's store (and the shared log
 * in bridge mode) at scrape time.
 */
export function registerRecoveryMetrics(registry: Registry, recovery: HostRecovery, sharedLog?: () => SharedLogStats): void {
  const stats = () => recovery.store.stats();
  readGauge(registry, "sockfleet_recovery_log_packets", "Broadcasts kept in this host's replay log.", [], () => [[{}, stats().packets]]);
  readGauge(registry, "sockfleet_recovery_log_bytes", "Estimated bytes of the broadcasts kept in this host's replay log.", [], () => [[{}, stats().bytes]]);
  readGauge(registry, "sockfleet_recovery_sessions", 'Sessions this host tracks: "connected", or "disconnected" and recoverable.', ["state"], () => {
    const s = stats();
    return [[{ state: "connected" }, s.sessions - s.disconnectedSessions], [{ state: "disconnected" }, s.disconnectedSessions]];
  });
  readCounter(registry, "sockfleet_recovery_restores_total", 'Reconnections that asked for their session: "recovered", or "expired" (the offset had left the log: a fresh session). Includes sessions taken over from other hosts.', ["result"], () => {
    const s = stats();
    return [[{ result: "recovered" }, s.recovered], [{ result: "expired" }, s.expired]];
  });
  readCounter(registry, "sockfleet_recovery_takeovers_total", 'Sessions of other hosts asked for here: "recovered" or "refused" (see the "session from another host" log line for why).', ["result"], () => [
    [{ result: "recovered" }, recovery.takeovers.recovered],
    [{ result: "refused" }, recovery.takeovers.refused],
  ]);
  if (!sharedLog) return;
  readGauge(registry, "sockfleet_shared_log_in_step", "1 while this host hands out shared-log offsets (clients can resume on other hosts); 0 after it delivered broadcasts alone (Redis unreachable) until they came back through the log.", [], () => [[{}, sharedLog().inStep ? 1 : 0]]);
  readCounter(registry, "sockfleet_shared_log_entries_total", 'Entries of the shared log (Redis stream): "appended" by this host, "read" by it.', ["op"], () => {
    const s = sharedLog();
    return [[{ op: "appended" }, s.appended], [{ op: "read" }, s.read]];
  });
  readCounter(registry, "sockfleet_shared_log_delivered_alone_total", "Broadcasts delivered on this host without the shared log (Redis unreachable or too slow), to be appended later.", [], () => [[{}, sharedLog().deliveredAlone]]);
  readCounter(registry, "sockfleet_shared_log_dropped_total", "Broadcasts delivered alone that never reached other hosts (the queue was full).", [], () => [[{}, sharedLog().dropped]]);
}
