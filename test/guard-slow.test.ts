import assert from "node:assert/strict";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { scrapeAdmin, total } from "./helpers/metrics";
import { rssOf } from "./helpers/rss";
import { closeAllRaw, RawSocketIo } from "./helpers/raw-socketio";
import { compiledFixture, SockfleetHost } from "./helpers/sockfleet";
import { waitUntil } from "./helpers/wait";

/** Resident memory of a process in MiB. */
const rssMb = (pid: number): number => rssOf(pid) / 1_048_576;

const KB = "x".repeat(1024);

/** Broadcasts 1 KB chat messages at 500/s from `publisher` until `done` or `ms`; returns the count. */
async function broadcast(publisher: Client, done: () => boolean, ms: number): Promise<number> {
  let sent = 0;
  const deadline = Date.now() + ms;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      for (let i = 0; i < 5; i++) publisher.emit("chat message", { n: sent++, pad: KB });
      if (done() || Date.now() > deadline) {
        clearInterval(timer);
        resolve();
      }
    }, 10);
  });
  return sent;
}

/** A host whose publisher may send 500 events/s (by design: no event rate limit), plus `args`. */
function slowConsumerHost(args: string[] = []): { host: () => SockfleetHost; clients: Client[] } {
  let host: SockfleetHost;
  const clients: Client[] = [];
  before(async () => {
    host = await SockfleetHost.start({ workers: 2, args: ["--admin-port", "0", "--max-events-per-second", "0", ...args] });
  });
  afterEach(() => {
    closeClients(clients.splice(0));
    closeAllRaw();
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });
  return { host: () => host, clients };
}

describe("slow consumers (max-buffered-bytes): clients that stop reading", function () {
  this.timeout(45_000);
  // Default heartbeat (45 s to a ping timeout): the buffered-bytes cap, not the ping, must drop them.
  const fixture = slowConsumerHost();

  it("disconnects 50 clients that stop reading while 1 KB messages are broadcast at 500/s, and worker memory stays bounded", async () => {
    const { clients } = fixture;
    const host = fixture.host();
    const publisher = await connect(host.url, { transports: ["websocket"] });
    const reader = await connect(host.url, { transports: ["websocket"] });
    clients.push(publisher, reader);
    const stalled = await Promise.all(Array.from({ length: 50 }, () => RawSocketIo.connect(host.port)));
    const pids = new Set(await Promise.all(stalled.slice(0, 10).map((s) => s.whoamiPid())));
    pids.add((await whoami(publisher)).pid);
    const before = new Map([...pids].map((pid) => [pid, rssMb(pid)]));
    const hitsBefore = total(await scrapeAdmin(host), "sockfleet_limit_hits_total", { limit: "max-buffered-bytes" });
    for (const s of stalled) s.stall();

    let readerGot = 0;
    reader.on("chat message", () => readerGot++);
    const peak = new Map(before);
    const sampler = setInterval(() => {
      for (const pid of pids) peak.set(pid, Math.max(peak.get(pid)!, rssMb(pid)));
    }, 100);
    let dropped = 0;
    const counter = setInterval(() => {
      void scrapeAdmin(host).then((s) => (dropped = total(s, "sockfleet_limit_hits_total", { limit: "max-buffered-bytes" }) - hitsBefore));
    }, 250);
    const started = Date.now();
    let sent: number;
    try {
      sent = await broadcast(publisher, () => dropped >= 50, 22_000);
    } finally {
      clearInterval(sampler);
      clearInterval(counter);
    }
    const took = Date.now() - started;
    await waitUntil("the reader to get every broadcast", () => readerGot >= sent || undefined, 10_000);
    const growth = [...pids].map((pid) => peak.get(pid)! - before.get(pid)!);
    console.log(`      stalled readers: ${dropped} of 50 dropped after ${took} ms (${sent} broadcasts); worker RSS growth ${growth.map((g) => g.toFixed(0)).join(" / ")} MB`);
    assert.equal(dropped, 50, "every stalled client disconnected as a slow consumer");
    for (const g of growth) assert.ok(g < 120, `worker RSS grew by ${g.toFixed(0)} MB`);
    for (const pid of pids) assert.ok(host.workerPids().includes(pid), "no worker restarted");
  });


  it("disconnects a long-polling client that stops polling once its queue passes the cap", async () => {
    const { clients } = fixture;
    const host = fixture.host();
    const base = `${host.url}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text();
    const sid = (JSON.parse(open.slice(open.indexOf("{"))) as { sid: string }).sid;
    const post = await fetch(`${base}&sid=${sid}`, { method: "POST", body: "40" });
    assert.equal(post.status, 200);
    assert.match(await (await fetch(`${base}&sid=${sid}`)).text(), /^40\{/);
    // From here on it never polls again: everything for it queues in engine.io's write buffer.
    const publisher = await connect(host.url, { transports: ["websocket"] });
    clients.push(publisher);
    const hitsBefore = total(await scrapeAdmin(host), "sockfleet_limit_hits_total", { limit: "max-buffered-bytes" });
    let hits = hitsBefore;
    const counter = setInterval(() => {
      void scrapeAdmin(host).then((samples) => (hits = total(samples, "sockfleet_limit_hits_total", { limit: "max-buffered-bytes" })));
    }, 250);
    const started = Date.now();
    try {
      await broadcast(publisher, () => hits > hitsBefore, 10_000);
    } finally {
      clearInterval(counter);
    }
    console.log(`      stalled polling client: dropped after ${Date.now() - started} ms`);
    assert.equal(hits, hitsBefore + 1);
    // Its session is gone: a poll now is refused as an unknown session.
    assert.equal((await fetch(`${base}&sid=${sid}`)).status, 400);
  });
});

describe("slow consumers (max-buffered-bytes): a blind-pong client", function () {
  this.timeout(30_000);
  // A short heartbeat: the blind pongs must be what keeps the client past the ping timeout.
  const fixture = slowConsumerHost(["--ping-interval", "1000", "--ping-timeout", "2000"]);

  it("disconnects a blind-pong client (answers pings on a timer, reads nothing) by the buffered-bytes cap", async () => {
    const { clients } = fixture;
    const host = fixture.host();
    const publisher = await connect(host.url, { transports: ["websocket"] });
    clients.push(publisher);
    const blind = await RawSocketIo.connect(host.port);
    const hitsBefore = total(await scrapeAdmin(host), "sockfleet_limit_hits_total", { limit: "max-buffered-bytes" });
    blind.blindPong(500);
    let hits = hitsBefore;
    const counter = setInterval(() => {
      void scrapeAdmin(host).then((s) => (hits = total(s, "sockfleet_limit_hits_total", { limit: "max-buffered-bytes" })));
    }, 250);
    const started = Date.now();
    try {
      await broadcast(publisher, () => hits > hitsBefore, 20_000);
    } finally {
      clearInterval(counter);
    }
    const took = Date.now() - started;
    console.log(`      blind pong: dropped after ${took} ms`);
    // It outlived the ping timeout (pingInterval + pingTimeout = 3 s): its pongs kept it alive, the cap did not.
    assert.equal(hits, hitsBefore + 1);
    assert.ok(took > 3_000, `dropped after ${took} ms`);
  });
});

describe("slow consumers and connection-state recovery", function () {
  this.timeout(60_000);
  let host: SockfleetHost;
  let clients: Client[] = [];
  before(async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("flood-app"), args: ["--max-buffered-bytes", "65536"] });
  });
  afterEach(() => {
    closeClients(clients);
    clients = [];
  });
  after(async () => {
    await host.stop();
  });

  it("replays more missed packets than --max-buffered-bytes to a recovering client that reads them, without cutting it off", async () => {
    const reader = await connect(host.url, { transports: ["websocket"] });
    const publisher = await connect(host.url, { transports: ["websocket"] });
    clients.push(reader, publisher);
    const seen: number[] = [];
    reader.on("n", (i: number) => seen.push(i));
    await request(publisher, "burst", 0, 1, 10);
    await waitUntil("the first broadcast (an offset to recover from)", () => seen.length === 1, 5_000);
    const disconnects: string[] = [];
    reader.on("disconnect", (reason) => disconnects.push(reason));
    // Drop the reader's transport; while it is away, 400 KB are broadcast: six times the cap.
    (reader.io.engine as unknown as { close(): void }).close();
    await waitUntil("the reader gone", () => !reader.connected, 5_000);
    for (let from = 1; from < 201; from += 50) await request(publisher, "burst", from, 50, 2_000);
    await waitUntil("the reader recovered with every missed broadcast", () => reader.connected && seen.length === 201, 15_000);
    assert.equal(reader.recovered, true);
    assert.deepEqual(seen, Array.from({ length: 201 }, (_, i) => i));
    assert.deepEqual(disconnects, ["forced close"], "cut off only by the test, not as a slow consumer");
    assert.ok(!host.logs.some((l) => l.limit === "max-buffered-bytes"), "no slow-consumer disconnect");
  });
});
