import assert from "node:assert/strict";
import net from "node:net";
import { createClient, type RedisClientType } from "redis";
import { createLogger } from "../src/observability/logger";
import { RedisHeadroom } from "../src/tiers/redis/redis-headroom";
import { closeClients, connect, connectMany, request, whoami } from "./helpers/clients";
import { withFleet } from "./helpers/hosts";
import { scrapeAdmin, total, values } from "./helpers/metrics";
import { RedisServer } from "./helpers/redis";
import { waitUntil } from "./helpers/wait";

const MAX_CONNECTIONS = 50;

/** The autoscaling signals on the admin port move with what the test does to the host. */
describe("headroom metrics", function () {
  this.timeout(90_000);
  let stopped: number | undefined;

  // Above the fleet's hooks: a stopped worker is let go on before its clients are closed.
  afterEach(() => {
    if (stopped !== undefined) process.kill(stopped, "SIGCONT");
    stopped = undefined;
  });
  const fleet = withFleet({ per: "all", hosts: { mode: "bridge", count: 2, workers: 1, args: ["--admin-port", "0", "--max-connections", String(MAX_CONNECTIONS), "--max-events-per-second", "0"] } });

  const ratio = async (): Promise<number> => total(await scrapeAdmin(fleet.hosts[0]), "sockfleet_capacity_ratio");

  it("reports connections held over --max-connections as sockfleet_capacity_ratio", async () => {
    await waitUntil("no connection held", async () => (await ratio()) === 0 || undefined);
    fleet.clients.push(...(await connectMany(fleet.hosts[0].url, 10, { transports: ["websocket"] })));
    assert.equal(await ratio(), 10 / MAX_CONNECTIONS);
    fleet.clients.push(...(await connectMany(fleet.hosts[0].url, 15, { transports: ["websocket"] })));
    assert.equal(await ratio(), 25 / MAX_CONNECTIONS);
    closeClients(fleet.clients.splice(0));
    await waitUntil("the ratio back to 0", async () => (await ratio()) === 0 || undefined);
  });

  it("reports a worker whose event loop was blocked in sockfleet_event_loop_lag_seconds and sockfleet_cpu_ratio", async () => {
    const client = await connect(fleet.hosts[0].url, { transports: ["websocket"] });
    fleet.clients.push(client);
    const worker = String((await whoami(client)).worker);
    // Starts a fresh window, with every worker in it: a scrape a worker answered too late (left out
    // after 2 s) is still in its queue, and would reset its window whenever it gets to it.
    // A scrape that reaches the worker between the block and the test's own (one answered late, say)
    // ends the window that held the block: on a loaded machine the block is made again, up to 3 times.
    let busy: Awaited<ReturnType<typeof scrapeAdmin>> | undefined;
    let windowS = 0;
    let lag = 0;
    for (let attempt = 0; attempt < 3 && lag < 0.9; attempt++) {
      await waitUntil("a scrape every worker answered", async () => total(await scrapeAdmin(fleet.hosts[0]), "sockfleet_scrape_missing_workers") === 0 || undefined);
      const from = Date.now();
      await client.timeout(15_000).emitWithAck("busy", 1_000);
      busy = await scrapeAdmin(fleet.hosts[0]);
      assert.equal(total(busy, "sockfleet_scrape_missing_workers"), 0, "every worker answered the scrape after the block");
      windowS = (Date.now() - from) / 1000;
      lag = total(busy, "sockfleet_event_loop_lag_seconds", { worker });
    }
    busy = busy!;
    const cpu = total(busy, "sockfleet_cpu_ratio", { worker });
    assert.ok(lag >= 0.9 && lag < windowS + 0.5, `lag ${lag} s after a 1 s block`);
    // The worker used at least 1 s of CPU within the test's window (which holds the metric's).
    assert.ok(cpu >= 0.9 / windowS && cpu <= 1.2, `cpu ${cpu} after 1 s of CPU in ${windowS} s`);
    assert.equal(values(busy, "sockfleet_cpu_ratio", { worker: "primary" }).length, 1);
    const idle = await scrapeAdmin(fleet.hosts[0]);
    assert.ok(total(idle, "sockfleet_event_loop_lag_seconds", { worker }) < 0.5, "the next window is calm again");
  });

  it("reports the bytes queued for a stopped worker on its data channel, and 0 once it reads again", async () => {
    const [a, b] = fleet.hosts;
    const subscriber = await connect(a.url, { transports: ["websocket"] });
    const publisher = await connect(b.url, { transports: ["websocket"] });
    fleet.clients.push(subscriber, publisher);
    const { worker, pid } = await whoami(subscriber);
    const queued = async (): Promise<number> => total(await scrapeAdmin(a), "sockfleet_data_channel_queued_bytes", { worker: String(worker) });
    assert.equal(await queued(), 0);
    stopped = pid;
    process.kill(pid, "SIGSTOP");
    // 2,000 broadcasts of 1 KB to a worker that reads nothing: more than the kernel's socket buffers hold.
    await publisher.timeout(30_000).emitWithAck("broadcast-many", { count: 2_000, perSecond: 4_000, bytes: 1_000 });
    const held = await waitUntil("bytes queued for the stopped worker", async () => {
      const bytes = await queued();
      return bytes > 0 ? bytes : undefined;
    }, 15_000, 250);
    assert.ok(held < 2_000 * 1_200, `${held} bytes queued for 2,000 broadcasts of 1 KB`);
    process.kill(pid, "SIGCONT");
    stopped = undefined;
    await waitUntil("the queue drained", async () => (await queued()) === 0 || undefined, 15_000, 250);
  });

  it("reports the output buffer Redis holds for the host's subscriber and how far it lags the shared log", async () => {
    const [a, b] = fleet.hosts;
    const publisher = await connect(b.url, { transports: ["websocket"] });
    fleet.clients.push(publisher);
    for (let i = 0; i < 20; i++) await request(publisher, "broadcast", { seq: i });
    const line = (await fleet.redis.clients("sockfleet:host-a:sub"))[0];
    assert.ok(line, "host A's subscriber is listed");
    const [, totMem] = /\btot-mem=(\d+)/.exec(line)!;
    const metrics = await waitUntil("a sample of host A's subscriber", async () => {
      const m = await scrapeAdmin(a);
      return values(m, "sockfleet_redis_output_buffer_bytes", { kind: "memory" }).length > 0 ? m : undefined;
    }, 10_000, 250);
    // Idle and reading: Redis holds no output for it, and its connection's memory is what CLIENT LIST says.
    assert.equal(total(metrics, "sockfleet_redis_output_buffer_bytes", { kind: "output" }), 0);
    const memory = total(metrics, "sockfleet_redis_output_buffer_bytes", { kind: "memory" });
    assert.ok(Math.abs(memory - Number(totMem)) < Number(totMem), `sampled ${memory}, CLIENT LIST says ${totMem}`);
    // Host A read all 20 broadcasts from the shared log: nothing behind.
    await waitUntil("host A caught up with the log", async () => {
      const m = await scrapeAdmin(a);
      return values(m, "sockfleet_shared_log_lag_entries").length === 1 && total(m, "sockfleet_shared_log_lag_entries") === 0 && total(m, "sockfleet_shared_log_lag_seconds") === 0 || undefined;
    }, 10_000, 250);
  });
});

describe("Redis headroom samples, against a real redis-server", function () {
  this.timeout(30_000);
  let redis: RedisServer;
  let client: RedisClientType;

  before(async () => {
    redis = await RedisServer.start();
    client = createClient({ url: redis.url });
    await client.connect();
  });
  after(async () => {
    await client.disconnect();
    await redis.stop();
  });

  it("counts the entries and seconds between what a host has read and the log's head", async () => {
    const key = "lag-test";
    for (let ms = 1_000; ms <= 3_000; ms += 100) await client.sendCommand(["XADD", key, `${ms}-0`, "f", "v"]);
    // The reader has read all 21 entries and stands at the head.
    const reader = { key, position: (): string | undefined => "3000-0", read: (): number => 21 };
    const headroom = new RedisHeadroom({ command: (_key, args) => client.sendCommand(args), subscriberName: "none" }, () => true, "any", reader, createLogger("silent", {}));
    try {
      await headroom.sample();
      assert.deepEqual(headroom.current().logLag, { entries: 0, seconds: 0 });
      // 15 more entries, over 7.5 s of stream time, that it has not read.
      for (let ms = 3_500; ms <= 10_500; ms += 500) await client.sendCommand(["XADD", key, `${ms}-0`, "f", "v"]);
      await headroom.sample();
      assert.deepEqual(headroom.current().logLag, { entries: 15, seconds: 7.5 });
      assert.equal(headroom.current().subscriber, undefined, "no subscriber of that name");
    } finally {
      headroom.close();
    }
  });
  it("reports the output buffer Redis holds for a subscriber that stopped reading", async () => {
    // A subscriber speaking RESP by hand, so the test can stop it reading: like a stalled host.
    const raw = net.connect(redis.port, "127.0.0.1");
    await new Promise((resolve) => raw.once("connect", resolve));
    raw.write("CLIENT SETNAME sockfleet:stalled:sub\r\nSUBSCRIBE stalled\r\n");
    await waitUntil("the subscription", async () => (await redis.clients("sockfleet:stalled:sub")).some((l) => /\bsub=1\b/.test(l)));
    raw.pause();
    const headroom = new RedisHeadroom({ command: (_key, args) => client.sendCommand(args), subscriberName: "sockfleet:stalled:sub" }, () => true, "stalled", undefined, createLogger("silent", {}));
    try {
      await headroom.sample();
      assert.equal(headroom.current().subscriber?.outputBytes, 0);
      // 8 MB published to it: more than the kernel's socket buffers take, less than Redis' default 32 MB limit.
      const payload = "x".repeat(64 * 1024);
      for (let i = 0; i < 128; i++) await client.publish("stalled", payload);
      const omem = Number(/\bomem=(\d+)/.exec((await redis.clients("sockfleet:stalled:sub"))[0])![1]);
      await headroom.sample();
      const sampled = headroom.current().subscriber!;
      assert.ok(omem > 1024 * 1024, `Redis holds ${omem} bytes for it`);
      assert.equal(sampled.outputBytes, omem);
      assert.ok(sampled.totalBytes >= omem);
    } finally {
      headroom.close();
      raw.destroy();
    }
  });
});
