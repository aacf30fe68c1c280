import assert from "node:assert/strict";
import { connect, reconnectTo, request, whoami, type Client } from "../helpers/clients";
import { scrapeAdmin, total } from "../helpers/metrics";
import { numbered, publishNumbered, range } from "../helpers/numbered";
import { killTree } from "../helpers/processes";
import type { SockfleetHost } from "../helpers/sockfleet";
import { nextEvent, waitUntil } from "../helpers/wait";

/**
 * A subscriber on host A (in room "blue") whose whole host is SIGKILLed reconnects to host B and
 * must get its id, its rooms and every broadcast a publisher on host B made meanwhile, once, in
 * order, on every stream (to all, to the room, to its id). `hosts` are 2 bridge-mode hosts started
 * with `--admin-port 0`; host A is taken out of it (killed). `track` is given the clients to close.
 */
export async function hostKillRecovery(hosts: SockfleetHost[], track: (clients: Client[]) => void): Promise<void> {
  const [a, b] = hosts;
  const subscriber = await connect(a.url, { transports: ["websocket"], reconnectionDelay: 200, reconnectionDelayMax: 200, randomizationFactor: 0 });
  const publisher = await connect(b.url, { transports: ["websocket"] });
  track([subscriber, publisher]);
  assert.equal((await whoami(subscriber)).host, "host-a");
  await request(subscriber, "join", "blue");
  reconnectTo(subscriber, () => b.url);
  const id = subscriber.id!;
  const streams = numbered(subscriber);
  await publishNumbered(publisher, id, 1, 5);
  await waitUntil("the first five", () => streams.get("direct")?.length === 5);

  const disconnected = nextEvent(subscriber, "disconnect", 5_000);
  const reconnected = nextEvent(subscriber, "connect", 20_000);
  await killTree(hosts.shift()!.child);
  await disconnected;
  await publishNumbered(publisher, id, 6, 20);
  await reconnected;
  assert.equal(subscriber.recovered, true);
  assert.equal(subscriber.id, id);
  assert.equal((await whoami(subscriber)).host, "host-b");
  await publishNumbered(publisher, id, 21, 25);

  await waitUntil("all 25 on every stream", () => ["all", "room", "direct"].every((s) => (streams.get(s)?.length ?? 0) >= 25));
  for (const stream of ["all", "room", "direct"]) assert.deepEqual(streams.get(stream), range(1, 25), stream);

  const metrics = await scrapeAdmin(hosts[0]);
  assert.equal(total(metrics, "sockfleet_recovery_takeovers_total", { result: "recovered" }), 1);
  assert.equal(total(metrics, "sockfleet_recovery_takeovers_total", { result: "refused" }), 0);
  assert.equal(total(metrics, "sockfleet_shared_log_in_step"), 1);
  // 25 x 3 broadcasts, all from host B: appended by it; read back by it, but for those to the room
  // before the takeover with room routing (one Redis node), which went to host A's channel only.
  assert.ok(total(metrics, "sockfleet_shared_log_entries_total", { op: "appended" }) >= 75);
  assert.ok(total(metrics, "sockfleet_shared_log_entries_total", { op: "read" }) >= 55);
  assert.equal(total(metrics, "sockfleet_shared_log_delivered_alone_total"), 0);
}
