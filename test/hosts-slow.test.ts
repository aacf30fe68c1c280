import assert from "node:assert/strict";
import { closeClients, connect, request, whoami } from "./helpers/clients";
import { startHosts, waitForFleet, withFleet } from "./helpers/hosts";
import { scrapeAdmin, total } from "./helpers/metrics";
import { sequences, range } from "./helpers/numbered";
import { RedisServer } from "./helpers/redis";
import { waitUntil } from "./helpers/wait";

/** The scenario of the scaling guide's warning, shortened: 1 KB broadcasts at 500/s, one host stopped 10 s (shorter, and the kernel's socket buffers on loopback absorb the whole stall: Redis never has to cut the host off). */
const RATE = 500;
const COUNT = 6_000;
const BYTES = 1_000;
const STALL_MS = 10_000;

/** Redis disconnects a subscriber holding 256 KB of output, or 128 KB for 5 s: about half a second of this load. */
const SMALL_PUBSUB_BUFFER = ["--client-output-buffer-limit", "pubsub", "256kb", "128kb", "5"];

/**
 * A host that cannot keep up (its primary SIGSTOPped while another host broadcasts): with recovery
 * on it catches up from the shared log; with recovery off Redis cuts its subscription and the loss
 * is counted, logged and told to the app, exactly.
 */
describe("a slow host cut off by Redis (client-output-buffer-limit)", function () {
  this.timeout(120_000);
  const figures: string[] = [];
  let stopped: number | undefined;

  // Above the fleet's hooks: a stopped host or worker is let go on before it is stopped.
  afterEach(() => {
    if (stopped !== undefined) process.kill(stopped, "SIGCONT");
    stopped = undefined;
  });
  const fleet = withFleet({ per: "each", redis: () => RedisServer.start(SMALL_PUBSUB_BUFFER) });
  after(() => console.log(`      slow host (2 hosts x 1 worker, ${COUNT} x ${BYTES} B at ${RATE}/s, stalled ${STALL_MS} ms):\n${figures.map((f) => `        ${f}`).join("\n")}`));

  /** Host B broadcasts while host A's primary is stopped; returns what host A's client saw. */
  async function stallWhileBroadcasting(recovery: "on" | "off", room?: string): Promise<{ seen: number[]; sent: number; told: Array<{ origin: string; missed: number }> }> {
    await fleet.start("bridge", 2, 1, ["--admin-port", "0", "--recovery", recovery, "--max-buffered-bytes", "67108864"]);
    const [a, b] = fleet.hosts;
    const subscriber = await connect(a.url, { transports: ["websocket"] });
    const publisher = await connect(b.url, { transports: ["websocket"] });
    fleet.clients.push(subscriber, publisher);
    assert.equal((await whoami(subscriber)).host, "host-a");
    assert.equal((await whoami(publisher)).host, "host-b");
    if (room !== undefined) await request(subscriber, "join", room);
    const seen = sequences(subscriber);
    const told: Array<{ origin: string; missed: number }> = [];
    subscriber.on("missed", (gap: { origin: string; missed: number }) => told.push(gap));
    const done = publisher.timeout(90_000).emitWithAck("broadcast-many", { count: COUNT, perSecond: RATE, bytes: BYTES, room }) as Promise<{ sent: number }>;
    await waitUntil("broadcasts to flow to host A", () => seen.length >= RATE / 2, 20_000);
    stopped = a.pid;
    process.kill(a.pid, "SIGSTOP");
    const before = seen.length;
    await new Promise((resolve) => setTimeout(resolve, STALL_MS)); // the stall itself is the scenario
    const during = seen.length - before;
    process.kill(a.pid, "SIGCONT");
    stopped = undefined;
    const { sent } = await done;
    assert.equal(sent, COUNT);
    // A few may have been on their way through host A's worker when its primary stopped.
    assert.ok(during < RATE / 5, `host A's client got ${during} broadcasts while its primary was stopped`);
    return { seen, sent, told };
  }

  it("with recovery on, every broadcast reaches the stalled host's clients exactly once, in order", async () => {
    const started = Date.now();
    const { seen, sent, told } = await stallWhileBroadcasting("on");
    await waitUntil(`all ${sent} broadcasts on host A (got ${seen.length})`, () => seen.length >= sent, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 500)); // a duplicate would arrive right behind
    assert.deepEqual(seen, range(1, sent));
    const metrics = await scrapeAdmin(fleet.hosts[0]);
    assert.equal(total(metrics, "sockfleet_redis_missed_messages_total"), 0);
    assert.deepEqual(told, []);
    figures.push(`recovery on: ${seen.length} of ${sent} delivered to host A, no duplicate, none missed (${Date.now() - started} ms)`);
  });

  it("with recovery off, /metrics counts exactly the broadcasts the stalled host's clients missed, and the log and the app name the gap", async () => {
    const started = Date.now();
    const { seen, sent, told } = await stallWhileBroadcasting("off");
    const a = fleet.hosts[0];
    let missed = 0;
    // The gap shows once the subscription is back and host B's next heartbeat (1 s) names its newest number.
    await waitUntil("host A to account for every broadcast", async () => {
      missed = total(await scrapeAdmin(a), "sockfleet_redis_missed_messages_total", { origin: "host-b" });
      return seen.length + missed >= sent;
    }, 20_000, 250).catch((err: Error) => {
      const redisLines = a.logs.filter((l) => l.component === "redis" || l.component === "redis-bridge").map((l) => JSON.stringify(l));
      throw new Error(`${err.message}: ${seen.length} seen + ${missed} missed of ${sent}\n${redisLines.join("\n")}`);
    });
    const received = new Set(seen);
    assert.equal(received.size, seen.length, "no broadcast twice");
    assert.ok(missed > 0, "Redis cut host A off: some broadcasts were lost");
    assert.equal(missed, sent - seen.length);

    const gaps = a.logs.filter((l) => l.msg === "broadcasts from another host were missed");
    assert.ok(gaps.length > 0);
    for (const gap of gaps) assert.equal(gap.origin, "host-b");
    assert.equal(gaps.reduce((sum, g) => sum + (g.missed as number), 0), missed);
    // Each gap's numbers are exactly the broadcasts the client lacks.
    const lacking = range(1, sent).filter((n) => !received.has(n));
    assert.deepEqual(gaps.flatMap((g) => range(g.from as number, g.to as number)), lacking);
    const cut = a.logs.find((l) => l.reason === "client-output-buffer-limit");
    assert.ok(cut, "the subscriber's disconnection is recognised");
    await waitUntil("the app to tell its clients of every gap", () => told.reduce((sum, g) => sum + g.missed, 0) >= missed, 5_000);
    assert.deepEqual(told, gaps.map((g) => ({ origin: "host-b", missed: g.missed })));
    figures.push(`recovery off: ${seen.length} of ${sent} delivered to host A, ${missed} missed (${((missed / sent) * 100).toFixed(0)}%), counted and logged in ${gaps.length} gap(s) (${Date.now() - started} ms)`);
  });
  it("with recovery off, counts exactly the broadcasts to a room (routed on its own channel) that the stalled host's member missed", async () => {
    const { seen, sent } = await stallWhileBroadcasting("off", "slow-room");
    const [a] = fleet.hosts;
    const [subscriber, publisher] = fleet.clients;
    // A room has no heartbeat: a loss shows when the room's next broadcast arrives, numbered past it.
    // Under load host A may resubscribe only after the burst ended, so probes follow until one arrives.
    const probesSeen: number[] = [];
    subscriber.on("event", (payload: { probe?: unknown } | null) => {
      if (typeof payload?.probe === "number") probesSeen.push(payload.probe);
    });
    let probes = 0;
    await waitUntil("a probe to reach host A's member", async () => {
      await request(publisher, "to-room", "slow-room", { probe: ++probes });
      return probesSeen.length > 0 || undefined;
    }, 20_000, 200);
    // Once one arrived the subscription is live: the last one sent arrives too, then nothing is in flight.
    await waitUntil("the last probe to reach host A's member", () => probesSeen.includes(probes));
    const lost = sent - seen.length + (probes - probesSeen.length);
    let missed = 0;
    await waitUntil("host A to account for every room broadcast", async () => {
      missed = total(await scrapeAdmin(a), "sockfleet_redis_missed_messages_total", { origin: "host-b" });
      return missed >= lost || undefined;
    }, 20_000, 250).catch((err: Error) => {
      const lines = a.logs.filter((l) => /missed|redis|subscri/i.test(String(l.msg)) || l.component === "host-routes").map((l) => JSON.stringify(l));
      throw new Error(`${err.message}: ${seen.length} of ${sent} seen, probes ${probesSeen.length} of ${probes}, ${missed} missed\n${lines.join("\n")}`);
    });
    assert.ok(seen.length < sent, "Redis cut host A off: some broadcasts were lost");
    assert.equal(missed, lost);
    // The room's numbers: the burst's 1..sent, then the probes.
    const received = new Set([...seen, ...probesSeen.map((p) => sent + p)]);
    const gaps = a.logs.filter((l) => l.msg === "room broadcasts from another host were missed");
    assert.deepEqual(gaps.flatMap((g) => range(g.from as number, g.to as number)), range(1, sent + probes).filter((n) => !received.has(n)));
    figures.push(`recovery off, room broadcasts: ${seen.length} of ${sent} delivered to host A, ${missed} missed, counted in ${gaps.length} gap(s)`);
  });

  it("in adapter mode, a worker whose subscription Redis cut keeps serving: the cut is logged, the app is told, and its subscription comes back", async () => {
    await fleet.start("adapter", 2, 1, ["--max-buffered-bytes", "67108864"]);
    const [a, b] = fleet.hosts;
    const subscriber = await connect(a.url, { transports: ["websocket"] });
    const publisher = await connect(b.url, { transports: ["websocket"] });
    fleet.clients.push(subscriber, publisher);
    const { pid } = await whoami(subscriber);
    const seen = sequences(subscriber);
    const told: unknown[] = [];
    subscriber.on("missed", (gap: unknown) => told.push(gap));
    const done = publisher.timeout(90_000).emitWithAck("broadcast-many", { count: COUNT, perSecond: RATE, bytes: BYTES }) as Promise<{ sent: number }>;
    await waitUntil("broadcasts to flow to host A", () => seen.length >= RATE / 2, 20_000);
    // In adapter mode the worker holds the subscription.
    stopped = pid;
    process.kill(pid, "SIGSTOP");
    await new Promise((resolve) => setTimeout(resolve, STALL_MS)); // the stall itself is the scenario
    process.kill(pid, "SIGCONT");
    stopped = undefined;
    const { sent } = await done;
    await a.waitForLog((l) => l.reason === "client-output-buffer-limit" && l.connection === "worker:sub", 10_000);
    await waitUntil("the app to tell its clients", () => told.length > 0, 5_000);
    assert.deepEqual(told, [{}]);
    assert.ok(seen.length < sent, `${seen.length} of ${sent}: Redis cut the worker off`);
    // Same worker, same session, subscription back: the next broadcast from host B arrives.
    assert.equal(subscriber.connected, true);
    assert.equal((await whoami(subscriber)).pid, pid);
    assert.deepEqual(a.logs.filter((l) => l.msg === "worker crashed"), []);
    const marker = sent + 1;
    await waitUntil("a broadcast from host B after the cut", async () => {
      await request(publisher, "broadcast", { seq: marker });
      return seen.includes(marker);
    }, 10_000, 500);
    figures.push(`adapter mode: ${seen.length - 1} of ${sent} delivered to host A's worker, ${sent + 1 - seen.length} missed; the cut logged and told to the app (count unknown)`);
  });
  it("counts no gap when this host first hears of another mid-series, nor when the other restarts and numbers from 1 again", async () => {
    await fleet.start("bridge", 2, 1, ["--admin-port", "0", "--recovery", "off"]);
    const restart = async (index: number, id: string, args: string[] = []): Promise<void> => {
      closeClients(fleet.clients.splice(0));
      await fleet.hosts[index].stop();
      fleet.hosts[index] = (await startHosts(fleet.redis.url, "bridge", 1, 1, ["--host-id", id, "--recovery", "off", ...args]))[0];
      await waitForFleet(fleet.hosts, 2);
    };
    /** Host B broadcasts `seqs`; host A's client must get exactly them. */
    const round = async (seqs: number[]): Promise<void> => {
      const subscriber = await connect(fleet.hosts[0].url, { transports: ["websocket"] });
      const publisher = await connect(fleet.hosts[1].url, { transports: ["websocket"] });
      fleet.clients.push(subscriber, publisher);
      const seen = sequences(subscriber);
      for (const seq of seqs) await request(publisher, "broadcast", { seq });
      await waitUntil(`${seqs.length} broadcasts on host A`, () => seen.length === seqs.length);
      assert.deepEqual(seen, seqs);
    };
    await round([1, 2, 3, 4, 5]);
    // Host A restarts: it first hears of host B at B's number 5 (heartbeat) and 6 (broadcast).
    await restart(0, "host-a", ["--admin-port", "0"]);
    await round([6, 7, 8]);
    // Host B restarts: a new process, numbering from 1 under a new bridge id.
    await restart(1, "host-b");
    await round([9, 10, 11]);
    assert.equal(total(await scrapeAdmin(fleet.hosts[0]), "sockfleet_redis_missed_messages_total"), 0);
    assert.deepEqual(fleet.hosts[0].logs.filter((l) => l.msg === "broadcasts from another host were missed"), []);
  });
});
