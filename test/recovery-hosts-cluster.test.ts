import assert from "node:assert/strict";
import { connect, request, whoami, type Client } from "./helpers/clients";
import { withFleet } from "./helpers/hosts";
import { scrapeAdmin, total } from "./helpers/metrics";
import { range, sequences } from "./helpers/numbered";
import { RedisCluster, type RedisServer } from "./helpers/redis";
import type { SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";
import { hostKillRecovery } from "./suites/host-kill-recovery";

/** Default --redis-prefix: the shared log's key and the bus channel (see src/tiers/redis/channels.ts). */
const LOG_KEY = "socket.io-sockfleet#log";
const BUS_CHANNEL = "socket.io-sockfleet#bus#";

async function redisStatus(host: SockfleetHost): Promise<string | undefined> {
  const res = await host.fetch("/readyz").catch(() => undefined);
  return res ? ((await res.json()) as { redis?: string }).redis : undefined;
}

interface Traffic {
  atLocal: number[];
  atRemote: number[];
  /** Broadcasts made in all, numbered 1..last. */
  last: number;
  /** When cross-host delivery resumed, in ms after the outage began and after it ended. */
  sinceDown: number;
  sinceUp: number;
}

/**
 * Broadcasts from a client of host A every 20 ms, seen by another client of host A and one of host
 * B, through a Redis outage: `down` begins it, `up` ends it. Waits until both hosts report Redis
 * degraded, then connected again, and the last broadcast reached both clients.
 */
async function throughOutage(hosts: SockfleetHost[], track: (clients: Client[]) => void, outage: { down(): Promise<void>; up(): Promise<void> }): Promise<Traffic> {
  const started = await Promise.all([connect(hosts[0].url), connect(hosts[0].url), connect(hosts[1].url)]);
  track(started);
  const [sender, local, remote] = started;
  assert.equal((await whoami(remote)).host, "host-b");
  const atLocal = sequences(local);
  const atRemote = sequences(remote);
  let seq = 0;
  const traffic = setInterval(() => void request(sender, "broadcast", { seq: ++seq }).catch(() => undefined), 20);
  let sinceDown: number;
  let sinceUp: number;
  try {
    await waitUntil("cross-host traffic to flow", () => atRemote.length >= 5);
    await outage.down();
    const downAt = Date.now();
    const cut = seq;
    await waitUntil("both hosts to report Redis degraded", async () => (await Promise.all(hosts.map(redisStatus))).every((s) => s === "degraded"));
    await waitUntil("local delivery to go on during the outage", () => atLocal.some((s) => s > cut + 25));
    await outage.up();
    const upAt = Date.now();
    const resumedAt = seq;
    await waitUntil("both hosts to report Redis connected", async () => (await Promise.all(hosts.map(redisStatus))).every((s) => s === "connected"), 20_000);
    await waitUntil("cross-host delivery to resume", () => atRemote.some((s) => s > resumedAt), 20_000, 10);
    sinceDown = Date.now() - downAt;
    sinceUp = Date.now() - upAt;
  } finally {
    clearInterval(traffic);
  }
  const last = seq;
  await waitUntil("the last message to reach both hosts", () => atLocal.includes(last) && atRemote.includes(last));
  return { atLocal, atRemote, last, sinceDown, sinceUp };
}

describe("bridge mode on a 3-node Redis Cluster: recovery across hosts and a node restart", function () {
  this.timeout(60_000);
  const fleet = withFleet({ per: "each", redis: () => RedisCluster.start(), hosts: { mode: "bridge", count: 2, workers: 2, args: ["--redis-sharded", "true", "--admin-port", "0"] } });

  it("gives a client whose whole host was SIGKILLed its id, rooms and every missed broadcast on another host, in order, once", () =>
    hostKillRecovery(fleet.hosts, (started) => fleet.clients.push(...started)));

  it("routes a room's shared-log entries to the host holding a member only, in the log's slot: the sending host reads none of them back", async () => {
    const [member, sender] = await Promise.all(fleet.hosts.map((h) => connect(h.url)));
    fleet.clients.push(member, sender);
    await request(member, "join", "cluster-routed");
    const seen: unknown[] = [];
    member.on("event", (payload: unknown) => seen.push(payload));
    const read = async (): Promise<number> => total(await scrapeAdmin(fleet.hosts[1]), "sockfleet_shared_log_entries_total", { op: "read" });
    const read0 = await read();
    for (let i = 0; i < 20; i++) await request(sender, "to-room", "cluster-routed", i);
    await waitUntil("the member to get every room broadcast", () => seen.length === 20);
    assert.deepEqual(seen, range(0, 19));
    assert.equal((await read()) - read0, 0, "the sending host, without members, read none of them back");
    assert.equal(total(await scrapeAdmin(fleet.hosts[1]), "sockfleet_shared_log_delivered_alone_total"), 0);
    const logNode = await fleet.redis.nodeOf(LOG_KEY);
    const channels = (await logNode.command("PUBSUB", "SHARDCHANNELS", "*#room#*")) as string[];
    assert.ok(channels.some((c) => c.endsWith("#cluster-routed#")), `room channels on the log's node: ${channels.join(", ")}`);
  });

  for (const [what, key] of [["the shared log", LOG_KEY], ["the bus channel", BUS_CHANNEL]] as const) {
    it(`keeps delivering inside a host while the node holding ${what} restarts, reports Redis connected again, and delivers across hosts what was sent meanwhile, once, in order`, async () => {
      const node = await fleet.redis.nodeOf(key);
      const { atLocal, atRemote, last, sinceUp } = await restartUnderTraffic(node);
      assert.deepEqual(atLocal, range(1, last), "local delivery never stopped nor repeated");
      // The README's promise for a Redis restart: broadcasts made while the node was down were
      // queued and appended once it was back; those in flight were appended again (readers skip a
      // second copy): the other host got all of them, once, in order.
      assert.deepEqual(atRemote, range(1, last), "the other host got every broadcast once, in order");
      console.log(`      (port ${node.port}: ${(await Promise.all([LOG_KEY, BUS_CHANNEL].map(async (k) => ((await fleet.redis.nodeOf(k)) === node ? k : "")))).filter(Boolean).join(", ")}; cross-host delivery resumed ${sinceUp} ms after it was back)`);
    });
  }

  it("with --recovery off, comes back connected after the node holding the bus channel restarts, delivers across hosts again, never twice nor out of order, and counts what the other host missed", async () => {
    for (const host of fleet.hosts.splice(0)) await host.stop();
    await fleet.start("bridge", 2, 2, ["--redis-sharded", "true", "--admin-port", "0", "--recovery", "off"]);
    const { atLocal, atRemote, last } = await restartUnderTraffic(await fleet.redis.nodeOf(BUS_CHANNEL));
    assert.deepEqual(atLocal, range(1, last), "local delivery never stopped nor repeated");
    // Pub/sub promises no more than on one node: queued while the node was down and published when
    // it was back; what the other host's subscriber was not yet there for is lost, and counted.
    const sorted = [...new Set(atRemote)].sort((x, y) => x - y);
    assert.deepEqual(atRemote, sorted, "never twice, never out of order");
    await waitUntil("the other host to count every broadcast it missed", async () => total(await scrapeAdmin(fleet.hosts[1]), "sockfleet_redis_missed_messages_total") === last - atRemote.length);
    console.log(`      (recovery off: the other host got ${atRemote.length} of ${last})`);
  });

  /** Broadcasts from host A every 20 ms while `node` is SIGKILLed and started again. */
  function restartUnderTraffic(node: RedisServer): Promise<Traffic> {
    return throughOutage(fleet.hosts, (started) => (fleet.clients = started), { down: () => node.stop(), up: () => node.resume() });
  }
});

describe("bridge mode on a Redis Cluster with replicas: a master fails over", function () {
  this.timeout(90_000);
  const fleet = withFleet({ per: "all", redis: () => RedisCluster.start(1), hosts: { mode: "bridge", count: 2, workers: 1, args: ["--redis-sharded", "true"] } });

  it("follows the shared log's slot to the replica that took over its SIGKILLed master: connected again, and every broadcast made meanwhile reaches the other host once, in order", async () => {
    const master = await fleet.redis.nodeOf(LOG_KEY);
    const { atLocal, atRemote, last, sinceDown } = await throughOutage(fleet.hosts, (started) => (fleet.clients = started), {
      down: () => master.stop(),
      up: async () => {
        await waitUntil("a replica to hold the shared log's slot", async () => (await fleet.redis.nodeOf(LOG_KEY).catch(() => master)) !== master, 20_000, 100);
        await fleet.redis.waitOk();
      },
    });
    assert.deepEqual(atLocal, range(1, last), "local delivery never stopped nor repeated");
    assert.deepEqual(atRemote, range(1, last), "the other host got every broadcast once, in order");
    // node-redis alone would keep reconnecting to the dead master's address: each host saw the new map.
    for (const host of fleet.hosts) assert.ok(host.logs.some((l) => l.msg === "redis cluster masters changed (failover): reconnecting to the new ones"), host.url);
    console.log(`      (cross-host delivery resumed ${sinceDown} ms after the master was killed)`);
  });
});
