import assert from "node:assert/strict";
import { connect, reconnectTo, request, whoami, type Client } from "./helpers/clients";
import { withFleet } from "./helpers/hosts";
import { killTree } from "./helpers/processes";
import { numbered, publishNumbered, range } from "./helpers/numbered";
import { nextEvent, waitUntil } from "./helpers/wait";
import { hostKillRecovery } from "./suites/host-kill-recovery";


describe("connection-state recovery across hosts (bridge mode, shared log in Redis)", function () {
  this.timeout(60_000);
  const fleet = withFleet({ per: "each", hosts: { mode: "bridge", count: 2, workers: 2, args: ["--admin-port", "0"] } });

  /** A subscriber on host A in room "blue" that reconnects to host B, and a publisher on host B. */
  async function subscriberAndPublisher(): Promise<{ subscriber: Client; publisher: Client }> {
    const [a, b] = fleet.hosts;
    const subscriber = await connect(a.url, { transports: ["websocket"], reconnectionDelay: 200, reconnectionDelayMax: 200, randomizationFactor: 0 });
    const publisher = await connect(b.url, { transports: ["websocket"] });
    fleet.clients.push(subscriber, publisher);
    assert.equal((await whoami(subscriber)).host, "host-a");
    await request(subscriber, "join", "blue");
    reconnectTo(subscriber, () => b.url);
    return { subscriber, publisher };
  }

  it("gives a client whose whole host was SIGKILLed its id, rooms and every missed broadcast on another host, in order, once", () =>
    hostKillRecovery(fleet.hosts, (started) => fleet.clients.push(...started)));

  it("recovers on another host a client whose worker was SIGKILLed while its host lives on", async () => {
    const { subscriber, publisher } = await subscriberAndPublisher();
    const id = subscriber.id!;
    const streams = numbered(subscriber);
    const victim = (await whoami(subscriber)).pid;
    await publishNumbered(publisher, id, 1, 3);
    await waitUntil("the first three", () => streams.get("direct")?.length === 3);

    const disconnected = nextEvent(subscriber, "disconnect", 5_000);
    const reconnected = nextEvent(subscriber, "connect", 20_000);
    process.kill(victim, "SIGKILL");
    await disconnected;
    await publishNumbered(publisher, id, 4, 10);
    await reconnected;
    assert.equal(subscriber.recovered, true);
    assert.equal(subscriber.id, id);
    assert.equal((await whoami(subscriber)).host, "host-b");
    await publishNumbered(publisher, id, 11, 12);
    await waitUntil("all 12 on every stream", () => ["all", "room", "direct"].every((s) => (streams.get(s)?.length ?? 0) >= 12));
    for (const stream of ["all", "room", "direct"]) assert.deepEqual(streams.get(stream), range(1, 12), stream);
    // Host A forgot the session it handed over.
    await fleet.hosts[1].waitForLog((l) => l.msg === "session from another host" && l.recovered === true);
  });

  it("gives a fresh session, never a gap, when the client comes back on another host with an offset older than its log", async () => {
    // Host B keeps only 100 broadcasts: the 177 sent while the subscriber is away push its offset out.
    for (const host of fleet.hosts.splice(0)) await host.stop();
    // The publisher sends 180 requests back to back, near the default event burst: no rate limit.
    await fleet.start("bridge", 2, 2, ["--recovery-max-packets", "100", "--max-events-per-second", "0"]);
    const { subscriber, publisher } = await subscriberAndPublisher();
    const id = subscriber.id!;
    await publishNumbered(publisher, id, 1, 1);
    const disconnected = nextEvent(subscriber, "disconnect", 5_000);
    const reconnected = nextEvent(subscriber, "connect", 20_000);
    subscriber.io.reconnectionDelay(3_000);
    subscriber.io.reconnectionDelayMax(3_000);
    const dead = fleet.hosts.shift()!;
    await killTree(dead.child);
    await disconnected;
    await publishNumbered(publisher, id, 2, 60);
    assert.equal(subscriber.connected, false, "published everything while the subscriber was away");
    await reconnected;
    assert.equal(subscriber.recovered, false);
    assert.notEqual(subscriber.id, id);
  });

  it("still recovers a client that reconnects again while its session is being taken over from a dead host", async () => {
    // Host B runs one worker, so the client's second attempt lands on its replacement.
    const b = fleet.hosts.pop()!;
    await b.stop();
    await fleet.start("bridge", 1, 1, ["--host-id", "host-b"]);
    const { subscriber, publisher } = await subscriberAndPublisher();
    const id = subscriber.id!;
    const streams = numbered(subscriber);
    await publishNumbered(publisher, id, 1, 3);
    await waitUntil("the first three", () => streams.get("direct")?.length === 3);

    const reconnected = nextEvent(subscriber, "connect", 30_000);
    const from = fleet.hosts[1].logs.length;
    await killTree(fleet.hosts.shift()!.child);
    // Host B waits for host A to be declared dead before taking the session: kill its worker meanwhile.
    await fleet.hosts[0].waitForLog((l) => l.msg === "taking over a session from another host", 10_000, from);
    const publisherWorker = (await whoami(publisher)).pid;
    process.kill(publisherWorker, "SIGKILL");
    await reconnected;
    assert.equal(subscriber.recovered, true);
    assert.equal(subscriber.id, id);
    // One takeover, not two racing for the session (the loser would hand out a fresh session).
    const refused = fleet.hosts[0].logs.slice(from).filter((l) => l.msg === "session from another host" && l.recovered !== true);
    assert.deepEqual(refused, []);
    await waitUntil("the publisher back", () => publisher.connected, 15_000);
    await publishNumbered(publisher, id, 4, 6);
    await waitUntil("all 6 on every stream", () => ["all", "room", "direct"].every((s) => (streams.get(s)?.length ?? 0) >= 6));
    for (const stream of ["all", "room", "direct"]) assert.deepEqual(streams.get(stream), range(1, 6), stream);
  });
});
