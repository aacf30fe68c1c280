import assert from "node:assert/strict";
import { connect, request, type Client } from "./helpers/clients";
import { record } from "./helpers/fleet";
import { withFleet } from "./helpers/hosts";
import { scrapeAdmin, total } from "./helpers/metrics";
import type { SockfleetHost } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

/** First joins raced by a broadcast from another host: as many as the sharded dynamic adapter loses some of. */
const RACES = 100;
const READ = "sockfleet_shared_log_entries_total";

describe("room broadcasts across 3 hosts in bridge mode with recovery on (one Redis node)", function () {
  this.timeout(180_000);
  const fleet = withFleet({ per: "all", hosts: { mode: "bridge", count: 3, workers: 1, args: ["--admin-port", "0"] }, cleanExit: true });

  async function onHosts(): Promise<{ member: Client; sender: Client; bystander: Client; senderPid: number }> {
    const [member, sender, bystander] = await Promise.all(fleet.hosts.map((h) => connect(h.url)));
    fleet.clients.push(member, sender, bystander);
    const senderPid = (await request<{ pid: number }>(sender, "whoami")).pid;
    return { member, sender, bystander, senderPid };
  }
  const read = async (host: SockfleetHost): Promise<number> => total(await scrapeAdmin(host), READ, { op: "read" });
  const alone = async (host: SockfleetHost): Promise<number> => total(await scrapeAdmin(host), "sockfleet_shared_log_delivered_alone_total");

  it("sends a room's shared-log entries only to the host holding a member: the sender and the host without one read none", async () => {
    const { member, sender, bystander } = await onHosts();
    await request(member, "join", "log-routed");
    const seen = record([member, bystander], "event");
    const [bystander0, sender0] = await Promise.all([read(fleet.hosts[2]), read(fleet.hosts[1])]);
    for (let i = 0; i < 20; i++) await request(sender, "to-room", "log-routed", i);
    await waitUntil("the member to get every room broadcast", () => seen.get(member)!.length === 20);
    assert.deepEqual(seen.get(member), Array.from({ length: 20 }, (_, i) => i));
    assert.equal((await read(fleet.hosts[2])) - bystander0, 0, "the host without members read none of them");
    assert.equal((await read(fleet.hosts[1])) - sender0, 0, "the sending host, without members, read none of them back");
    assert.equal(await alone(fleet.hosts[1]), 0, "and delivered none alone for want of reading it back");
    assert.deepEqual(seen.get(bystander), []);
    const [channel] = (await fleet.redis.command("PUBSUB", "CHANNELS", "*#room#/#log-routed#")) as string[];
    const [, subscribers] = (await fleet.redis.command("PUBSUB", "NUMSUB", channel)) as [string, number];
    assert.equal(Number(subscribers), 1, `subscribers of ${channel}`);
  });

  it("gives the offset of a room broadcast to a client in the room on the sending host, read back in stream order", async () => {
    const [member, sender] = await Promise.all([connect(fleet.hosts[0].url), connect(fleet.hosts[0].url)]);
    fleet.clients.push(member, sender);
    await request(member, "join", "log-local");
    const offsets: string[] = [];
    member.on("event", (...args: unknown[]) => offsets.push(String(args[args.length - 1])));
    for (let i = 0; i < 10; i++) await request(sender, "to-room", "log-local", i);
    await waitUntil("the member to get them", () => offsets.length === 10);
    assert.ok(offsets.every((offset) => /^\d+-\d+$/.test(offset)), `offsets: ${offsets.join(", ")}`);
    assert.equal(await alone(fleet.hosts[0]), 0);
  });

  it(`delivers every broadcast another host emits right after each of ${RACES} first joins, the join's announcement held back`, async () => {
    const { member, senderPid } = await onHosts();
    const seen = record([member], "event");
    const sent: string[] = [];
    for (let i = 0; i < RACES; i++) {
      const payload = `log-race-${i}`;
      sent.push(payload);
      // The worker is kept busy 20 ms after join() returned: its announcement goes after the relay
      // to the other host has left, so the broadcast is appended before this host subscribed.
      await request(member, "join-and-relay", `log-race-room-${i}`, senderPid, payload, 20);
    }
    await waitUntil("the member to get every broadcast", () => seen.get(member)!.length >= RACES, 30_000);
    assert.deepEqual([...seen.get(member)!].sort(), [...sent].sort());
    const metrics = await scrapeAdmin(fleet.hosts[0]);
    assert.ok(total(metrics, "sockfleet_log_room_catchups_total", { outcome: "caught_up" }) > 0, "some came by the join's catch-up");
    assert.equal(total(metrics, "sockfleet_log_room_catchups_total", { outcome: "failed" }), 0);
  });

  it("keeps delivering another host's broadcasts to a worker whose sockets join a new room every event-loop turn", async () => {
    const { member, sender } = await onHosts();
    const events: string[] = [];
    member.on("event", (payload: unknown) => events.push(String(payload)));
    const over = nextEvent(member, "storm-over", 30_000).then(() => events.push("storm-over"));
    const scans0 = total(await scrapeAdmin(fleet.hosts[0]), "sockfleet_log_room_catchups_total", { outcome: "scans" });
    await request(member, "join-storm", 3_000);
    await request(sender, "broadcast", "during-storm");
    await over;
    await waitUntil("the broadcast", () => events.includes("during-storm"));
    assert.ok(events.indexOf("during-storm") < events.indexOf("storm-over"), `got ${events.join(", ")}: the broadcast waited for the joins to stop`);
    assert.ok(total(await scrapeAdmin(fleet.hosts[0]), "sockfleet_log_room_catchups_total", { outcome: "scans" }) - scans0 > 10);
  });

  it("gives a client in two rooms another host's broadcasts in the order emitted, across its rooms and broadcasts to all", async () => {
    const { member, senderPid } = await onHosts();
    await request(member, "join", "log-order-old-room");
    const seen = record([member], "event");
    for (let round = 0; round < 10; round++) {
      const prefix = `log-order-${round}`;
      await request(member, "join-and-burst-rooms", `log-order-new-room-${round}`, "log-order-old-room", senderPid, prefix, 60, 20);
      const mine = (): unknown[] => seen.get(member)!.filter((p) => typeof p === "string" && p.startsWith(`${prefix}-`));
      await waitUntil("the member to get the whole burst", () => mine().length >= 60);
      assert.deepEqual(mine(), Array.from({ length: 60 }, (_, i) => `${prefix}-${i}`));
    }
  });
});

describe("room routing of the shared log when Redis restarts (bridge mode, recovery on)", function () {
  this.timeout(120_000);
  const fleet = withFleet({ per: "all", hosts: { mode: "bridge", count: 2, workers: 1, args: ["--admin-port", "0"] }, cleanExit: true });

  it("subscribes every room with members again: a room joined before the restart gets the other host's broadcasts after it, in order", async () => {
    const [member, sender] = (fleet.clients = await Promise.all(fleet.hosts.map((h) => connect(h.url))));
    await request(member, "join", "restart-room");
    const seen = record([member], "event");
    await request(sender, "to-room", "restart-room", "before");
    await waitUntil("the broadcast before the restart", () => seen.get(member)!.includes("before"));
    await fleet.redis.stop();
    await fleet.redis.resume();
    let tries = 0;
    await waitUntil("a broadcast after the restart to arrive", async () => {
      await request(sender, "to-room", "restart-room", `probe-${++tries}`).catch(() => undefined);
      return seen.get(member)!.some((p) => String(p).startsWith("probe-")) || undefined;
    }, 15_000, 100);
    const after = (): unknown[] => seen.get(member)!.filter((p) => String(p).startsWith("after-"));
    for (let i = 0; i < 10; i++) await request(sender, "to-room", "restart-room", `after-${i}`);
    await waitUntil("every broadcast after the restart", () => after().length >= 10);
    assert.deepEqual(after(), Array.from({ length: 10 }, (_, i) => `after-${i}`));
    // The subscriber connection may be replaced once more after a restart (its SUBSCRIBEs then go again).
    await waitUntil("the room's channel to be subscribed", async () => {
      const subscribed = (await fleet.redis.command("PUBSUB", "CHANNELS", "*#room#*")) as string[];
      return subscribed.some((c) => c.endsWith("#restart-room#")) || undefined;
    }, 10_000, 100);
  });
});
