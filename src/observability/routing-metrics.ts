import { Counter, Gauge, type Registry } from "prom-client";
import type { RoomRoutes } from "../primary/room-routes";

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
