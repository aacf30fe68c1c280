import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { closeClients, connect, connectMany, request, type Client } from "./helpers/clients";
import { isAlive } from "./helpers/processes";
import { SockfleetHost, sourceFixture } from "./helpers/sockfleet";
import { Traffic } from "./helpers/traffic";
import { waitUntil } from "./helpers/wait";

/**
 * A client is back within this bound after its worker is replaced: socket.io-client's default first
 * reconnection delay is 0.5-1.5 s; measured about 2 s on an idle machine. The margin is for loaded CI.
 */
const RECONNECT_BOUND_MS = 10_000;

describe("rolling restart (SIGHUP to the primary)", function () {
  this.timeout(120_000);
  let clients: Client[] = [];
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "sockfleet-roll-"));
  });
  afterEach(() => {
    closeClients(clients);
    clients = [];
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("replaces every worker one at a time under traffic: no refused connection, every client back within the bound, /readyz 200 throughout", async () => {
    const host = await SockfleetHost.start({ workers: 3, args: ["--drain-time", "1000"] });
    try {
      const before = host.workerPids();
      assert.equal(before.length, 3);
      const traffic = await Traffic.start(host.url, { clients: 60, freshEveryMs: 100, probeEveryMs: 100, broadcastEveryMs: 500 });
      await traffic.everyClientHeardABroadcast();
      const from = host.logs.length;
      process.kill(host.pid, "SIGHUP");
      const done = await host.waitForLog((l) => l.msg === "rolling restart complete", 60_000, from);
      const report = await traffic.stop(RECONNECT_BOUND_MS * 2);
      // The measurement the operations issue asks for; also in docs/deploying.md.
      console.log(`      roll of 3 workers under traffic: ${JSON.stringify({ ...report, servedBy: undefined, rollMs: done.durationMs, connectErrors: report.connectErrors.slice(0, 3), freshFailures: report.freshFailures.slice(0, 3), probeFailures: report.probeFailures.slice(0, 3), unanswered: report.servedBy.filter((p) => p === 0).length })}`);

      assert.equal(done.replaced, 3);
      const after = host.workerPids();
      assert.equal(after.length, 3);
      assert.deepEqual(after.filter((pid) => before.includes(pid)), [], "every worker was replaced");
      assert.deepEqual(report.servedBy.filter((pid) => !after.includes(pid)), [], "every client is served by a new worker");
      assert.deepEqual(report.freshFailures, [], "no fresh connection failed during the roll");
      assert.deepEqual(report.connectErrors, [], "no reconnection attempt was refused");
      assert.deepEqual(report.probeFailures, [], "/readyz stayed 200");
      assert.equal(report.stillDisconnected, 0);
      assert.ok(report.longestReconnectMs <= RECONNECT_BOUND_MS, `longest reconnect ${report.longestReconnectMs} ms`);
      assert.ok(report.answered > 0);
      // Connection-state recovery (on by default): every moved client kept its session and missed no broadcast.
      assert.equal(report.recovered, report.disconnects);
      assert.equal(report.missedBroadcasts, 0);
      // At most one publish may race the publisher's own move (see TrafficReport.unpublished).
      assert.ok(report.unpublished <= 1, `${report.unpublished} broadcasts reached no client`);
      // One worker at a time: each replacement was ready before its predecessor started draining.
      const steps = host.logs.slice(from).filter((l) => l.msg === "worker ready" || l.msg === "worker draining").map((l) => l.msg);
      assert.deepEqual(steps, ["worker ready", "worker draining", "worker ready", "worker draining", "worker ready", "worker draining"]);
    } finally {
      await host.stop();
    }
  });

  it("tells a replaced worker's clients to reconnect spread over the drain time, not all at once", async () => {
    const host = await SockfleetHost.start({ workers: 1, args: ["--drain-time", "2000"] });
    try {
      clients = await connectMany(host.url, 40, { transports: ["websocket"] });
      const times: number[] = [];
      for (const client of clients) client.once("disconnect", () => times.push(Date.now()));
      process.kill(host.pid, "SIGHUP");
      await waitUntil("every client to be told", () => times.length === 40, 20_000);
      const spread = Math.max(...times) - Math.min(...times);
      // 40 clients over 2000 ms in 50 ms ticks: one client a tick, the last one about 1950 ms after the first.
      assert.ok(spread >= 1_500 && spread <= 4_000, `disconnects spread over ${spread} ms`);
      await waitUntil("every client back", () => clients.every((c) => c.connected), 15_000);
    } finally {
      await host.stop();
    }
  });

  it("starts the new workers from the code now on disk", async () => {
    const versionFile = path.join(dir, "version");
    fs.writeFileSync(versionFile, "v1");
    const host = await SockfleetHost.start({ workers: 2, app: sourceFixture("versioned-app.cjs"), env: { SOCKFLEET_TEST_VERSION_FILE: versionFile }, args: ["--drain-time", "200"] });
    try {
      const client = await connect(host.url, { transports: ["websocket"] });
      clients.push(client);
      assert.equal((await request<{ version: string }>(client, "version")).version, "v1");
      fs.writeFileSync(versionFile, "v2");
      const from = host.logs.length;
      process.kill(host.pid, "SIGHUP");
      await host.waitForLog((l) => l.msg === "rolling restart complete", 30_000, from);
      await waitUntil("the client to reconnect", () => client.connected, 10_000);
      assert.equal((await request<{ version: string }>(client, "version")).version, "v2");
      const fresh = await connect(host.url);
      clients.push(fresh);
      assert.equal((await request<{ version: string }>(fresh, "version")).version, "v2");
    } finally {
      await host.stop();
    }
  });

  it("keeps the old workers serving when a new one fails to start, and the host stays ready", async () => {
    const versionFile = path.join(dir, "version");
    fs.writeFileSync(versionFile, "v1");
    const host = await SockfleetHost.start({ workers: 2, app: sourceFixture("versioned-app.cjs"), env: { SOCKFLEET_TEST_VERSION_FILE: versionFile } });
    try {
      const before = host.workerPids();
      const client = await connect(host.url, { transports: ["websocket"] });
      clients.push(client);
      let disconnects = 0;
      client.on("disconnect", () => disconnects++);
      fs.writeFileSync(versionFile, "broken");
      const from = host.logs.length;
      process.kill(host.pid, "SIGHUP");
      await host.waitForLog((l) => l.msg === "rolling restart aborted: a new worker failed to start; the remaining workers keep running the old code", 30_000, from);
      assert.equal((await host.fetch("/readyz")).status, 200);
      assert.deepEqual(host.workerPids().sort(), before.sort());
      assert.equal((await request<{ version: string }>(client, "version")).version, "v1");
      assert.equal(disconnects, 0);
    } finally {
      await host.stop();
    }
  });

  it("shuts down cleanly when SIGTERM arrives in the middle of a roll", async () => {
    const host = await SockfleetHost.start({ workers: 2, args: ["--drain-time", "3000"] });
    const client = await connect(host.url, { transports: ["websocket"] });
    clients.push(client);
    const from = host.logs.length;
    process.kill(host.pid, "SIGHUP");
    await host.waitForLog((l) => l.msg === "worker draining", 30_000, from);
    const pids = host.workerPids();
    assert.equal(await host.stop(), 0);
    await waitUntil("every worker to exit", () => pids.every((pid) => !isAlive(pid)), 5_000);
  });
});
