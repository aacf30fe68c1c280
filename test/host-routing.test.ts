import assert from "node:assert/strict";
import { connect, request, type Client } from "./helpers/clients";
import { record } from "./helpers/fleet";
import { withFleet } from "./helpers/hosts";
import { scrapeAdmin, total } from "./helpers/metrics";
import { RedisCluster } from "./helpers/redis";
import type { SockfleetHost } from "./helpers/sockfleet";
import { killTree } from "./helpers/processes";
import { nextEvent, waitUntil } from "./helpers/wait";

/** First joins raced by a broadcast from the other host: as many as the sharded dynamic adapter loses some of. */
const RACES = 100;
const ROOM_METRIC = "sockfleet_host_room_broadcasts_total";
/** The bus channel under the default --redis-prefix (src/tiers/redis/channels.ts). */
const BUS_CHANNEL = "socket.io-sockfleet#bus#";

for (const on of ["one Redis node", "a 3-node Redis Cluster"] as const) {
  describe(`room broadcasts across 3 hosts in bridge mode with --recovery off, on ${on}`, function () {
    this.timeout(180_000);
    const cluster = on !== "one Redis node";
    const fleet = withFleet({
      per: "all",
      ...(cluster ? { redis: () => RedisCluster.start() } : {}),
      hosts: { mode: "bridge", count: 3, workers: 1, args: ["--recovery", "off", "--admin-port", "0", ...(cluster ? ["--redis-sharded", "true"] : [])] },
      cleanExit: true,
    });

    async function onHosts(): Promise<{ member: Client; sender: Client; bystander: Client; senderPid: number }> {
      const [member, sender, bystander] = await Promise.all(fleet.hosts.map((h) => connect(h.url)));
      fleet.clients.push(member, sender, bystander);
      const senderPid = (await request<{ pid: number }>(sender, "whoami")).pid;
      return { member, sender, bystander, senderPid };
    }
    const counted = async (host: SockfleetHost, outcome: string): Promise<number> => total(await scrapeAdmin(host), ROOM_METRIC, { outcome });

    it("sends a room's broadcasts only to the host holding a member: the host without one receives none", async () => {
      const { member, sender, bystander } = await onHosts();
      await request(member, "join", "routed-across");
      const seen = record([member, bystander], "event");
      const [received0, bystander0, published0, routed0] = await Promise.all([
        counted(fleet.hosts[0], "received"), counted(fleet.hosts[2], "received"), counted(fleet.hosts[1], "published"), counted(fleet.hosts[1], "routed"),
      ]);
      for (let i = 0; i < 20; i++) await request(sender, "to-room", "routed-across", i);
      await waitUntil("the member to get every room broadcast", () => seen.get(member)!.length === 20);
      await waitUntil("the publisher to count its routes", async () => (await counted(fleet.hosts[1], "routed")) - routed0 >= 20 || undefined);
      assert.equal((await counted(fleet.hosts[0], "received")) - received0, 20, "the member's host received each once");
      assert.equal((await counted(fleet.hosts[2], "received")) - bystander0, 0, "the host without members received none");
      assert.equal((await counted(fleet.hosts[1], "published")) - published0, 20);
      assert.equal((await counted(fleet.hosts[1], "routed")) - routed0, 20, "each reached one other host");
      assert.deepEqual(seen.get(bystander), []);
      if (cluster) {
        // In the bus's slot: a publisher's room broadcasts and bus messages leave through one node, in order.
        const busNode = await (fleet.redis as RedisCluster).nodeOf(BUS_CHANNEL);
        const channels = (await busNode.command("PUBSUB", "SHARDCHANNELS", "*#room#*")) as string[];
        assert.ok(channels.some((c) => c.endsWith("#routed-across#")), `room channels on the bus's node: ${channels.join(", ")}`);
      }
    });

    it("counts no missed broadcasts on a host that room broadcasts rightly skip", async () => {
      const { member, sender, bystander } = await onHosts();
      await request(member, "join", "gapless");
      const missed0 = total(await scrapeAdmin(fleet.hosts[2]), "sockfleet_redis_missed_messages_total");
      for (let i = 0; i < 20; i++) await request(sender, "to-room", "gapless", i);
      // A broadcast to all after them, on the bus: had the skipped room broadcasts counted in its
      // number, the bystander's gap detector would see 20 missing when it arrives.
      const seen = record([bystander], "event");
      await request(sender, "broadcast", "after-rooms");
      await waitUntil("the bystander to get the broadcast to all", () => seen.get(bystander)!.includes("after-rooms"));
      assert.equal(total(await scrapeAdmin(fleet.hosts[2]), "sockfleet_redis_missed_messages_total") - missed0, 0);
    });

    it(`delivers every broadcast another host emits right after each of ${RACES} first joins, the join's announcement held back`, async () => {
      const { member, senderPid } = await onHosts();
      const seen = record([member], "event");
      const sent: string[] = [];
      for (let i = 0; i < RACES; i++) {
        const payload = `across-race-${i}`;
        sent.push(payload);
        // The worker is kept busy 20 ms after join() returned: its announcement goes after the relay
        // to the other host has left, so the broadcast is published before this host subscribed.
        await request(member, "join-and-relay", `across-race-room-${i}`, senderPid, payload, 20);
      }
      await waitUntil("the member to get every broadcast", () => seen.get(member)!.length >= RACES, 30_000);
      assert.deepEqual([...seen.get(member)!].sort(), [...sent].sort());
      assert.ok((await counted(fleet.hosts[0], "received")) > 0);
      assert.ok(total(await scrapeAdmin(fleet.hosts[0]), "sockfleet_host_room_catchups_total", { outcome: "caught_up" }) > 0, "some came by catch-up");
    });

    it("keeps delivering another host's broadcasts to a worker whose sockets join a new room every event-loop turn", async () => {
      const { member, sender } = await onHosts();
      const events: string[] = [];
      member.on("event", (payload: unknown) => events.push(String(payload)));
      const over = nextEvent(member, "storm-over", 30_000).then(() => events.push("storm-over"));
      // Each turn's join is a room new to the host: a SUBSCRIBE and a catch-up from both other hosts.
      await request(member, "join-storm", 3_000);
      await request(sender, "broadcast", "during-storm");
      await over;
      await waitUntil("the broadcast", () => events.includes("during-storm"));
      assert.ok(events.indexOf("during-storm") < events.indexOf("storm-over"), `got ${events.join(", ")}: the broadcast waited for the joins to stop`);
      assert.ok(total(await scrapeAdmin(fleet.hosts[0]), "sockfleet_host_room_catchups_total", { outcome: "requested" }) > 10);
    });

    it("gives a client in two rooms another host's broadcasts in the order emitted, across its rooms and broadcasts to all", async () => {
      const { member, senderPid } = await onHosts();
      await request(member, "join", "order-old-room");
      const seen = record([member], "event");
      for (let round = 0; round < 10; round++) {
        const prefix = `order-${round}`;
        await request(member, "join-and-burst-rooms", `order-new-room-${round}`, "order-old-room", senderPid, prefix, 60, 20);
        const mine = (): unknown[] => seen.get(member)!.filter((p) => typeof p === "string" && p.startsWith(`${prefix}-`));
        await waitUntil("the member to get the whole burst", () => mine().length >= 60);
        assert.deepEqual(mine(), Array.from({ length: 60 }, (_, i) => `${prefix}-${i}`));
      }
    });
  });

}

describe("room routing across hosts when Redis restarts (bridge mode, --recovery off)", function () {
  this.timeout(120_000);
  const fleet = withFleet({ per: "all", hosts: { mode: "bridge", count: 2, workers: 1, args: ["--recovery", "off", "--admin-port", "0"] }, cleanExit: true });

  it("subscribes every room with members again: a room joined before the restart gets the other host's broadcasts after it", async () => {
    const [member, sender] = (fleet.clients = await Promise.all(fleet.hosts.map((h) => connect(h.url))));
    await request(member, "join", "survives-restart");
    const seen = record([member], "event");
    await request(sender, "to-room", "survives-restart", "before");
    await waitUntil("the broadcast before the restart", () => seen.get(member)!.includes("before"));
    await fleet.redis.stop();
    await fleet.redis.resume();
    // Redis empty again: until the member's host has subscribed anew, a broadcast may find no one.
    let tries = 0;
    await waitUntil("a broadcast after the restart to arrive", async () => {
      await request(sender, "to-room", "survives-restart", `probe-${++tries}`).catch(() => undefined);
      return seen.get(member)!.some((p) => String(p).startsWith("probe-")) || undefined;
    }, 15_000, 100);
    const after = (): unknown[] => seen.get(member)!.filter((p) => String(p).startsWith("after-"));
    for (let i = 0; i < 10; i++) await request(sender, "to-room", "survives-restart", `after-${i}`);
    await waitUntil("every broadcast after the restart", () => after().length >= 10);
    assert.deepEqual(after(), Array.from({ length: 10 }, (_, i) => `after-${i}`));
    const subscribed = (await fleet.redis.command("PUBSUB", "CHANNELS", "*#room#*")) as string[];
    assert.ok(subscribed.some((c) => c.endsWith("#survives-restart#")), `room channels after the restart: ${subscribed.join(", ")}`);
  });
});

describe("room routing across hosts when a host dies (bridge mode, --recovery off)", function () {
  this.timeout(120_000);
  const fleet = withFleet({ per: "all", hosts: { mode: "bridge", count: 3, workers: 1, args: ["--recovery", "off"] }, cleanExit: true });

  it("completes a first join whose catch-up asks a host that was just SIGKILLed, losing nothing from the living one", async () => {
    const [member, sender] = (fleet.clients = await Promise.all(fleet.hosts.slice(0, 2).map((h) => connect(h.url))));
    const senderPid = (await request<{ pid: number }>(sender, "whoami")).pid;
    const seen = record([member], "event");
    // The dead host is still a publisher the member's host heard from: its catch-up waits for
    // an answer that never comes, until the host is noticed gone (3 s heartbeat timeout).
    await killTree(fleet.hosts.pop()!.child);
    const started = Date.now();
    for (let i = 0; i < 5; i++) await request(member, "join-and-relay", `after-death-${i}`, senderPid, `after-death-${i}`, 20);
    await waitUntil("the member to get every broadcast", () => seen.get(member)!.length >= 5, 15_000);
    assert.deepEqual([...seen.get(member)!].sort(), Array.from({ length: 5 }, (_, i) => `after-death-${i}`));
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  });
});

describe("socket ids' rooms across hosts in bridge mode with --recovery off", function () {
  this.timeout(120_000);
  /** Connections to host A: each would have been a first join (SUBSCRIBE, catch-up) were socket ids routed. */
  const CONNECTIONS = 40;
  const fleet = withFleet({ per: "all", hosts: { mode: "bridge", count: 2, workers: 1, args: ["--recovery", "off", "--admin-port", "0"] }, cleanExit: true });

  const catchUps = async (host: SockfleetHost, outcome: string): Promise<number> => total(await scrapeAdmin(host), "sockfleet_host_room_catchups_total", { outcome });

  it(`connects ${CONNECTIONS} clients to one host with no catch-up request and no room channel for their ids, and io.to(id) from the other host still reaches each`, async () => {
    const [requested0, answered0, published0] = await Promise.all([
      catchUps(fleet.hosts[0], "requested"), catchUps(fleet.hosts[1], "answered"), total(await scrapeAdmin(fleet.hosts[1]), ROOM_METRIC, { outcome: "published" }),
    ]);
    // Half polling first (the default), half websocket only: both transports go through the same join.
    const members = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => connect(fleet.hosts[0].url, i % 2 === 0 ? {} : { transports: ["websocket"] })));
    fleet.clients.push(...members);
    const sender = await connect(fleet.hosts[1].url);
    fleet.clients.push(sender);
    const seen = record(members, "event");
    for (const member of members) await request(sender, "to-room", member.id, `to-${member.id}`);
    await waitUntil("every client to get the broadcast to its id", () => members.every((m) => seen.get(m)!.length >= 1));
    // A broadcast to all after them, on the bus behind them from the same publisher: once it is in, nothing more is on its way.
    await request(sender, "broadcast", "after-ids");
    await waitUntil("the broadcast to all", () => members.every((m) => seen.get(m)!.includes("after-ids")));
    for (const member of members) assert.deepEqual(seen.get(member), [`to-${member.id}`, "after-ids"], `client ${member.id} got only its own`);
    assert.equal((await catchUps(fleet.hosts[0], "requested")) - requested0, 0, "no catch-up requested for a connection");
    assert.equal((await catchUps(fleet.hosts[1], "answered")) - answered0, 0, "none answered by the other host");
    assert.equal(total(await scrapeAdmin(fleet.hosts[1]), ROOM_METRIC, { outcome: "published" }) - published0, 0, "broadcasts to socket ids went on the bus");
    const channels = (await fleet.redis.command("PUBSUB", "CHANNELS", "*#room#*")) as string[];
    const ids = [...members, sender].map((c) => c.id!);
    assert.deepEqual(channels.filter((c) => ids.some((id) => c.includes(id))), [], "no room channel subscribed for a socket id");
  });

  it("still routes a named room on its channel, joined by a client of the host after the connections", async () => {
    const [member, sender] = await Promise.all(fleet.hosts.map((h) => connect(h.url)));
    fleet.clients.push(member, sender);
    await request(member, "join", "named-after-ids");
    const seen = record([member], "event");
    await request(sender, "to-room", "named-after-ids", "named");
    await waitUntil("the room broadcast", () => seen.get(member)!.includes("named"));
    const channels = (await fleet.redis.command("PUBSUB", "CHANNELS", "*#room#*")) as string[];
    assert.ok(channels.some((c) => c.endsWith("#named-after-ids#")), `room channels: ${channels.join(", ")}`);
    assert.ok((await catchUps(fleet.hosts[0], "requested")) > 0, "the named room's first join asked the other host");
  });
});
