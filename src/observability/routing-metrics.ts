import { Counter, Gauge, type Registry } from "prom-client";
import type { RoomRoutes } from "../primary/room-routes";
import type { HostRoutes } from "../tiers/redis/host-routes";
import type { LogRoutes } from "../tiers/redis/log-routes";

/** The primary's room-routing series (primary/room-routes.ts), read from its counts at scrape time. */
export function registerRoutingMetrics(registry: Registry, routes: RoomRoutes): void {
  new Counter({
    name: "sockfleet_room_broadcasts_total",
    help: 'Room broadcasts the primary relayed, per worker: "routed" (sent: the worker holds a member of one of its rooms) or "skipped" (not sent: it holds none).',
    labelNames: ["worker", "outcome"],
    registers: [registry],
    collect() {
      this.reset();
      for (const [worker, counts] of routes.routeCounts()) {
        this.inc({ worker: String(worker), outcome: "routed" }, counts.routed);
        this.inc({ worker: String(worker), outcome: "skipped" }, counts.skipped);
      }
    },
  });
  new Gauge({
    name: "sockfleet_room_catchup_broadcasts",
    help: "Skipped room broadcasts the primary keeps for joins still on their way to it (until every worker they skipped announced past them; 100 ms when idle, at most 5 s).",
    registers: [registry],
    collect() {
      this.set(routes.retained());
    },
  });
  new Counter({
    name: "sockfleet_room_late_joins_total",
    help: "Room joins announced so late (over 5 s, or after 50,000 skipped broadcasts or --max-channel-bytes of them) that broadcasts emitted after them may have been lost on their worker.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(routes.lateJoins);
    },
  });
}

/** Room routing across hosts (tiers/redis/host-routes.ts), bridge mode with --recovery off. */
export function registerHostRoutingMetrics(registry: Registry, routes: HostRoutes): void {
  new Counter({
    name: "sockfleet_host_room_broadcasts_total",
    help: 'Room broadcasts across hosts: "published" by this host on a room channel, other hosts they were "routed" to (held a member) or "skipped" (held none), and "received" here from other hosts.',
    labelNames: ["outcome"],
    registers: [registry],
    collect() {
      this.reset();
      const c = routes.counts;
      for (const outcome of ["published", "routed", "skipped", "received"] as const) this.inc({ outcome }, c[outcome]);
    },
  });
  new Counter({
    name: "sockfleet_host_room_catchups_total",
    help: 'First joins of a room on this host: catch-up requests "requested" from the other hosts, requests of others "answered", and room broadcasts "caught_up" by them (published after a join, before the room\'s subscription took effect).',
    labelNames: ["outcome"],
    registers: [registry],
    collect() {
      this.reset();
      const c = routes.catchUps.counts;
      this.inc({ outcome: "requested" }, c.requested);
      this.inc({ outcome: "answered" }, c.answered);
      this.inc({ outcome: "caught_up" }, c.caughtUp);
    },
  });
  new Gauge({
    name: "sockfleet_host_room_retained_broadcasts",
    help: "Room broadcasts this host published and keeps for catch-ups of joins on other hosts (at most 5 s, 50,000, --max-channel-bytes).",
    registers: [registry],
    collect() {
      this.set(routes.retained().kept);
    },
  });
}

/** Room routing of the shared log (recovery on, one Redis node: tiers/redis/log-routes.ts). */
export function registerLogRoutingMetrics(registry: Registry, routes: LogRoutes): void {
  new Counter({
    name: "sockfleet_log_room_catchups_total",
    help: 'Scans of the shared log for rooms this host had not read (first joins, takeovers): "scans" made, entries "caught_up" by them (appended before the room\'s subscription took effect), scans "failed" (joins answered without them).',
    labelNames: ["outcome"],
    registers: [registry],
    collect() {
      this.reset();
      const c = routes.counts;
      this.inc({ outcome: "scans" }, c.scans);
      this.inc({ outcome: "caught_up" }, c.caughtUp);
      this.inc({ outcome: "failed" }, c.failed);
    },
  });
  new Gauge({
    name: "sockfleet_log_room_channels",
    help: "Room channels of the shared log this host subscribes to (rooms a worker holds a member of, or a recoverable session is in).",
    registers: [registry],
    collect() {
      this.set(routes.size());
    },
  });
}
