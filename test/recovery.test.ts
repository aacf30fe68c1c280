import assert from "node:assert/strict";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { compiledFixture, SockfleetHost } from "./helpers/sockfleet";
import { numbered, publishNumbered, range } from "./helpers/numbered";

/** The publisher sends 180 requests back to back, past the default event burst (200) with the others: no rate limit. */
const FAST_PUBLISHER = ["--max-events-per-second", "0"];
import { nextEvent, waitUntil } from "./helpers/wait";


describe("connection-state recovery on one host", function () {
  this.timeout(60_000);
  let host: SockfleetHost;
  let clients: Client[] = [];

  afterEach(async () => {
    closeClients(clients);
    clients = [];
    await host?.stop();
  });

  /** A subscriber in room "blue" and a publisher on another worker. */
  async function subscriberAndPublisher(reconnectionDelay = 100): Promise<{ subscriber: Client; publisher: Client; victim: number }> {
    const subscriber = await connect(host.url, { transports: ["websocket"], reconnectionDelay, reconnectionDelayMax: reconnectionDelay, randomizationFactor: 0 });
    clients.push(subscriber);
    const victim = (await whoami(subscriber)).pid;
    await request(subscriber, "join", "blue");
    let publisher: Client | undefined;
    for (let i = 0; i < 10 && !publisher; i++) {
      const candidate = await connect(host.url, { transports: ["websocket"] });
      clients.push(candidate);
      if ((await whoami(candidate)).pid !== victim) publisher = candidate;
    }
    assert.ok(publisher, "a publisher on another worker");
    return { subscriber, publisher, victim };
  }


  it("gives a client whose worker is SIGKILLed its id, rooms and every missed broadcast, in order, once", async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app") });
    const { subscriber, publisher, victim } = await subscriberAndPublisher();
    const id = subscriber.id!;
    const streams = numbered(subscriber);
    await publishNumbered(publisher, id, 1, 5);
    await waitUntil("the first five", () => streams.get("direct")?.length === 5);

    const disconnected = nextEvent(subscriber, "disconnect", 5_000);
    const reconnected = nextEvent(subscriber, "connect", 15_000);
    process.kill(victim, "SIGKILL");
    await disconnected;
    await publishNumbered(publisher, id, 6, 20); // while the subscriber is away (or already back)
    await reconnected;
    assert.equal(subscriber.recovered, true);
    assert.equal(subscriber.id, id);
    await publishNumbered(publisher, id, 21, 25); // after it is back: still a room member

    await waitUntil("all 25 on every stream", () => ["all", "room", "direct"].every((s) => (streams.get(s)?.length ?? 0) >= 25));
    for (const stream of ["all", "room", "direct"]) assert.deepEqual(streams.get(stream), range(1, 25), stream);
    assert.notEqual((await whoami(subscriber)).pid, victim);
  });

  it("recovers the clients of a worker that shuts down gracefully", async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app") });
    const { subscriber, publisher, victim } = await subscriberAndPublisher();
    const id = subscriber.id!;
    const streams = numbered(subscriber);
    await publishNumbered(publisher, id, 1, 3);
    const disconnected = nextEvent(subscriber, "disconnect", 5_000);
    const reconnected = nextEvent(subscriber, "connect", 15_000);
    process.kill(victim, "SIGTERM");
    await disconnected;
    await publishNumbered(publisher, id, 4, 10);
    await reconnected;
    assert.equal(subscriber.recovered, true);
    await waitUntil("all 10", () => ["all", "room", "direct"].every((s) => (streams.get(s)?.length ?? 0) >= 10));
    for (const stream of ["all", "room", "direct"]) assert.deepEqual(streams.get(stream), range(1, 10), stream);
  });

  it("gives a fresh session, never a silent gap, when the client missed more than the log keeps", async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app"), args: ["--recovery-max-packets", "100", ...FAST_PUBLISHER] });
    // The subscriber stays away 3 s, long enough for the log to move past it.
    const { subscriber, publisher, victim } = await subscriberAndPublisher(3_000);
    const id = subscriber.id!;
    const streams = numbered(subscriber);
    await publishNumbered(publisher, id, 1, 1);
    await waitUntil("the first", () => streams.get("direct")?.length === 1);
    const disconnected = nextEvent(subscriber, "disconnect", 5_000);
    const reconnected = nextEvent(subscriber, "connect", 20_000);
    process.kill(victim, "SIGKILL");
    await disconnected;
    await publishNumbered(publisher, id, 2, 60); // 177 broadcasts > 100 kept
    assert.equal(subscriber.connected, false, "published everything while the subscriber was away");
    await reconnected;
    assert.equal(subscriber.recovered, false);
    assert.notEqual(subscriber.id, id);
  });

  it("is off with --recovery off: a reconnecting client gets a new session", async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("adapter-app"), args: ["--recovery", "off"] });
    const { subscriber, publisher, victim } = await subscriberAndPublisher();
    const id = subscriber.id!;
    await publishNumbered(publisher, id, 1, 2);
    const disconnected = nextEvent(subscriber, "disconnect", 5_000);
    const reconnected = nextEvent(subscriber, "connect", 15_000);
    process.kill(victim, "SIGKILL");
    await disconnected;
    await reconnected;
    assert.notEqual(subscriber.recovered, true);
    assert.notEqual(subscriber.id, id);
  });
});
