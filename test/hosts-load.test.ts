import assert from "node:assert/strict";
import { connect, request, whoami } from "./helpers/clients";
import { record } from "./helpers/fleet";
import { withFleet, type RedisMode } from "./helpers/hosts";
import { RedisServer } from "./helpers/redis";
import { waitUntil } from "./helpers/wait";

const BROADCASTS = 50;

/**
 * Messages written so far, from INFO commandstats (no MONITOR): PUBLISH calls, plus XADD calls
 * (bridge mode with recovery on orders recoverable broadcasts through a stream), less one per
 * EVAL: on one node the shared log's append is one script doing an XADD and the PUBLISH of the
 * entry on its feed, one message written, and commandstats counts the script's inner calls too.
 */
async function publishCalls(redis: RedisServer): Promise<number> {
  const stats = await redis.info("commandstats");
  const calls = (name: string): number => Number(/calls=(\d+)/.exec(stats.get(name) ?? "calls=0")![1]);
  return calls("cmdstat_publish") + calls("cmdstat_xadd") - calls("cmdstat_eval");
}

/**
 * Subscriber connections a broadcast on "/" reaches: in bridge mode those of the bus channel (one
 * per host; with recovery on, broadcasts travel on the shared log's feed instead, subscribed by the
 * same connection of each host, the same count); in adapter mode every connection holding a pattern subscription (one per worker,
 * each on `socket.io#/#*`).
 */
async function receivers(redis: RedisServer, mode: RedisMode): Promise<number> {
  if (mode === "bridge") {
    const reply = (await redis.command("PUBSUB", "NUMSUB", "socket.io-sockfleet#bus#")) as [string, number];
    return Number(reply[1]);
  }
  return (await redis.clients()).filter((line) => /\bpsub=[1-9]/.test(line)).length;
}

/**
 * The Redis load of each mode, measured: connections per host (CLIENT LIST) and Redis deliveries
 * per broadcast (PUBLISH calls from commandstats deltas times the subscribers each reaches).
 */
describe("Redis load per host and per broadcast", function () {
  this.timeout(90_000);
  const figures: string[] = [];
  const fleet = withFleet({ per: "all", cleanExit: true });
  after(() => {
    // The figures the README quotes; printed so CI logs keep them.
    console.log(`      Redis load, 2 hosts:\n${figures.map((f) => `        ${f}`).join("\n")}`);
  });

  for (const workers of [2, 4]) {
    for (const mode of ["bridge", "adapter"] as const) {
      it(`${mode} mode, 2 hosts x ${workers} workers: ${mode === "bridge" ? "2 connections per host and one delivery per host" : "2 connections per worker and one delivery per worker"} for each broadcast`, async () => {
        await fleet.start(mode, 2, workers);
        const perHost = await Promise.all(["host-a", "host-b"].map(async (id) => (await fleet.redis.clients(`sockfleet:${id}:`)).length));

        fleet.clients = await Promise.all([connect(fleet.hosts[0].url), connect(fleet.hosts[1].url)]);
        const [sender, remote] = fleet.clients;
        assert.equal((await whoami(remote)).host, "host-b");
        const seen = record([remote], "event");
        const before = await publishCalls(fleet.redis);
        for (let i = 0; i < BROADCASTS; i++) await request(sender, "broadcast", i);
        await waitUntil("every broadcast to reach the other host", () => seen.get(remote)!.length === BROADCASTS);
        const publishes = (await publishCalls(fleet.redis)) - before;
        const reach = await receivers(fleet.redis, mode);
        const perBroadcast = Math.round(((publishes - 0) / BROADCASTS) * reach * 100) / 100;
        figures.push(`${mode} 2x${workers}: connections per host ${perHost.join("/")}, PUBLISH per broadcast ${(publishes / BROADCASTS).toFixed(2)}, subscribers reached ${reach}, deliveries per broadcast ~${perBroadcast}`);

        if (mode === "bridge") {
          // Publishing and subscribing: the shared log (recovery is on by default) is read from its feed, on the subscriber.
          for (const count of perHost) assert.equal(count, 2, `bridge mode holds ${count} connections on one host`);
          assert.equal(reach, 2);
        } else {
          for (const count of perHost) assert.equal(count, 2 * workers);
          assert.equal(reach, 2 * workers);
        }
        // One PUBLISH (or XADD) per broadcast, plus the bridges' 1/s heartbeats over the measuring window.
        assert.ok(publishes / BROADCASTS < 1.2, `${publishes} PUBLISH calls for ${BROADCASTS} broadcasts`);
      });
    }
  }
});
