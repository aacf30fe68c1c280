import assert from "node:assert/strict";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { MB, rssOf } from "./helpers/rss";
import { scrapeAdmin, total } from "./helpers/metrics";
import { isAlive } from "./helpers/processes";
import { compiledFixture, SockfleetHost } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

/** Signals `pid`, ignoring a process that is gone already. */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // gone
  }
}

describe("the data channel between the primary and its workers", function () {
  this.timeout(60_000);
  let host: SockfleetHost | undefined;
  let clients: Client[] = [];
  let stopped: number | undefined;

  afterEach(async () => {
    if (stopped !== undefined) signal(stopped, "SIGCONT");
    stopped = undefined;
    closeClients(clients);
    clients = [];
    await host?.stop();
  });

  /** Numbered broadcasts ("n", i) a client received, in arrival order. */
  function collect(client: Client): number[] {
    const seen: number[] = [];
    client.on("n", (i: number) => seen.push(i));
    return seen;
  }

  it("replaces a worker that stops reading once --max-channel-bytes are waiting for it, while the other worker keeps delivering, and its clients recover every broadcast in order, once", async () => {
    host = await SockfleetHost.start({
      workers: 2,
      app: compiledFixture("flood-app"),
      args: ["--max-channel-bytes", "1048576", "--recovery-max-bytes", "8000000", "--admin-port", "0"],
    });
    const options = { transports: ["websocket"], reconnectionDelay: 100, reconnectionDelayMax: 100, randomizationFactor: 0 };
    const stalledClient = await connect(host.url, options);
    clients.push(stalledClient);
    const stalledPid = (await whoami(stalledClient)).pid;
    let publisher: Client | undefined;
    for (let i = 0; i < 10 && !publisher; i++) {
      const candidate = await connect(host.url, options);
      clients.push(candidate);
      if ((await whoami(candidate)).pid !== stalledPid) publisher = candidate;
    }
    assert.ok(publisher, "a client on the other worker");
    const publisherPid = (await whoami(publisher)).pid;
    const atStalled = collect(stalledClient);
    const atPublisher = collect(publisher);
    const firstId = stalledClient.id;

    const perRound = 100;
    const bytes = 2_000;
    let sent = 0;
    // Warm up before taking the baseline: 4 MB through every worker.
    for (let round = 0; round < 20; round++) {
      await request(publisher, "burst", sent, perRound, bytes);
      sent += perRound;
      await waitUntil(`warm-up round ${round} delivered`, () => atPublisher.length >= sent && atStalled.length >= sent, 5_000);
    }
    const baseline = rssOf(host.pid);
    let peak = baseline;
    signal(stalledPid, "SIGSTOP");
    stopped = stalledPid;
    const before = sent;
    // 150 rounds would be 30 MB; the stalled worker should be gone after about 1 MiB of them.
    for (let round = 0; round < 150 && isAlive(stalledPid); round++) {
      await request(publisher, "burst", sent, perRound, bytes);
      sent += perRound;
      await waitUntil(`round ${round} delivered on the other worker`, () => atPublisher.length >= sent, 5_000);
      peak = Math.max(peak, rssOf(host.pid));
    }
    const grown = peak - baseline;
    console.log(`      ${(((sent - before) * bytes) / MB).toFixed(1)} MB broadcast while a worker was stopped; primary RSS +${(grown / MB).toFixed(1)} MB; stalled worker alive: ${isAlive(stalledPid)}`);
    signal(stalledPid, "SIGCONT");
    stopped = undefined;

    assert.ok(grown < 40 * MB, `primary RSS grew by ${(grown / MB).toFixed(1)} MB`);
    await waitUntil("the stalled worker gone", () => !isAlive(stalledPid), 10_000);
    const samples = await scrapeAdmin(host);
    assert.ok(total(samples, "sockfleet_limit_hits_total", { limit: "max-channel-bytes" }) >= 1, "the limit hit is counted");
    assert.ok(host.logs.some((l) => l.limit === "max-channel-bytes"), "the limit hit is logged");

    // Its clients come back on another worker with every broadcast they missed, in a recovery
    // reply larger than the bound: broadcasts going on meanwhile must not make that worker look stalled.
    for (let round = 0; round < 50 && !(stalledClient.connected && stalledClient.recovered); round++) {
      await request(publisher, "burst", sent, perRound, bytes);
      sent += perRound;
      await waitUntil(`round ${round} delivered while the client recovers`, () => atPublisher.length >= sent, 5_000);
    }
    for (let round = 0; round < 3; round++) {
      await request(publisher, "burst", sent, perRound, bytes);
      sent += perRound;
    }
    await waitUntil("the stalled worker's client reconnected", () => stalledClient.connected && stalledClient.recovered, 15_000);
    assert.equal(stalledClient.id, firstId, "same session");
    const all = Array.from({ length: sent }, (_, i) => i);
    await waitUntil("every broadcast at the stalled worker's client", () => atStalled.length >= sent, 10_000);
    assert.deepEqual(atStalled, all, "in order, once");
    assert.deepEqual(atPublisher, all);

    assert.ok(isAlive(publisherPid), "the worker that took the recovery reply is still up");
    // The slot serves again, and the host delivers to every client.
    await host.waitForLog((l) => l.msg === "worker ready" && l.workerPid !== stalledPid && l.workerPid !== undefined && host!.workerPids().length === 2, 15_000);
    const next = nextEvent<[number]>(stalledClient, "n", 5_000);
    await request(publisher, "burst", sent, 1, 10);
    assert.equal((await next)[0], sent);
  });

  it("refuses new broadcasts on a worker whose link to a stopped primary holds --max-channel-bytes, keeps that worker serving, and delivers the accepted ones in order once the primary runs again", async () => {
    host = await SockfleetHost.start({ workers: 2, app: compiledFixture("flood-app"), args: ["--max-channel-bytes", "1048576", "--admin-port", "0"] });
    const options = { transports: ["websocket"] };
    const publisher = await connect(host.url, options);
    clients.push(publisher);
    const publisherPid = (await whoami(publisher)).pid;
    let other: Client | undefined;
    for (let i = 0; i < 10 && !other; i++) {
      const candidate = await connect(host.url, options);
      clients.push(candidate);
      if ((await whoami(candidate)).pid !== publisherPid) other = candidate;
    }
    assert.ok(other, "a client on the other worker");
    const atOther = collect(other);
    const atPublisher = collect(publisher);

    // Connections already handed over talk to their worker directly: the worker serves on.
    signal(host.pid, "SIGSTOP");
    stopped = host.pid;
    const reply = await request<{ sent: number; refused?: string }>(publisher, "burst", 0, 5_000, 2_000); // 10 MB
    signal(host.pid, "SIGCONT");
    stopped = undefined;
    assert.equal(reply.refused, "SOCKFLEET_CHANNEL_FULL");
    assert.ok(reply.sent >= 400 && reply.sent < 2_500, `${reply.sent} broadcasts of 2 KB accepted before the refusal`);

    const accepted = Array.from({ length: reply.sent }, (_, i) => i);
    await waitUntil("the accepted broadcasts on both workers", () => atOther.length >= reply.sent && atPublisher.length >= reply.sent, 15_000);
    assert.deepEqual(atOther, accepted);
    assert.deepEqual(atPublisher, accepted);
    assert.ok(isAlive(publisherPid), "the refusing worker is still up");
    const samples = await scrapeAdmin(host);
    assert.ok(total(samples, "sockfleet_limit_hits_total", { limit: "max-channel-bytes" }) >= 1, "the refusal is counted");
    assert.ok(host.logs.some((l) => l.limit === "max-channel-bytes" && l.role === "worker"), "the refusal is logged by the worker");

    // Once the primary has caught up, broadcasts are accepted again.
    const next = nextEvent<[number]>(other, "n", 5_000);
    assert.deepEqual(await request(publisher, "burst", reply.sent, 1, 10), { sent: 1 });
    assert.equal((await next)[0], reply.sent);
  });

  for (const depth of [2_500, 50_000]) {
    it(`fails only the emit of an app broadcast nested ${depth} deep, which the data channel cannot carry, and every process serves on`, async () => {
      host = await SockfleetHost.start({ workers: 2, app: compiledFixture("flood-app"), args: ["--admin-port", "0"] });
      const sender = await connect(host.url, { transports: ["websocket"] });
      clients.push(sender);
      const listener = await connect(host.url, { transports: ["websocket"] });
      clients.push(listener);
      const pids = host.workerPids().sort();
      const deep: number[] = [];
      listener.on("deep", (i: number) => deep.push(i));
      // Wherever it cannot be (de)serialized, the emit throws in the app's handler (logged and
      // counted, no ack) or the frame is dropped and logged; the ack says nothing either way.
      await sender.timeout(2_000).emitWithAck("deep", { depth, bytes: 10, count: 1 }).catch(() => undefined);
      // Where: the publishing worker cannot encode it (FrameEncodingError), or a receiving one cannot decode or deliver it.
      await host.waitForLog((l) => (l.err as { type?: string } | undefined)?.type === "FrameEncodingError" || l.msg === "frame from the primary cannot be decoded or delivered; skipped", 5_000);
      const numbered = collect(listener);
      assert.deepEqual(await request(sender, "burst", 0, 3, 10), { sent: 3 });
      await waitUntil("the next broadcasts at the other client", () => numbered.length === 3, 5_000);
      assert.deepEqual(numbered, [0, 1, 2]);
      assert.deepEqual(host.workerPids().sort(), pids, "no worker restarted");
      assert.equal(host.child.exitCode, null, "the primary serves on");
      assert.ok(deep.length <= 1, "delivered at most once, never in pieces");
      const samples = await scrapeAdmin(host);
      assert.equal(total(samples, "sockfleet_worker_restarts_total", { reason: "crash" }), 0);
    });
  }
});
