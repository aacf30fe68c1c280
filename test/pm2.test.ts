import assert from "node:assert/strict";
import { ECOSYSTEM, Pm2 } from "./helpers/pm2";
import { Traffic } from "./helpers/traffic";
import { waitUntil } from "./helpers/wait";

describe("pm2 with ecosystem.config.js", function () {
  this.timeout(120_000);
  let pm2: Pm2;
  let url: string;
  let adminUrl: string;

  before(async () => {
    // The environment of `pm2 start` must win over the file's defaults (PORT 3000, HOST 0.0.0.0).
    pm2 = new Pm2({ PORT: "0", HOST: "127.0.0.1", WORKERS: "2", ADMIN_PORT: "0", DRAIN_TIME: "500" });
    await pm2.run(["start", ECOSYSTEM, "--env", "production"]);
  });
  after(async () => {
    try {
      await pm2.run(["kill"]).catch(() => undefined);
      await waitUntil("every process pm2 led to to exit", () => pm2.alive().length === 0, 15_000).catch(() => undefined);
      assert.deepEqual(pm2.alive(), [], "processes left running");
    } finally {
      pm2.dispose();
    }
  });

  it("reports online only once every worker serves, in fork mode, with the settings from the environment", async () => {
    // wait_ready: `pm2 start` has returned, so the ready line must already be written.
    const ready = pm2.logs().find((l) => l.msg === "ready");
    assert.ok(ready, "pm2 start returned before sockfleet was ready");
    assert.equal(ready.workers, 2);
    assert.equal(ready.address, "127.0.0.1");
    assert.notEqual(ready.port, 3000);
    url = `http://127.0.0.1:${ready.port as number}`;
    adminUrl = `http://127.0.0.1:${ready.adminPort as number}`;
    const [app] = await pm2.list();
    assert.equal(app.name, "sockfleet");
    assert.equal(app.status, "online");
    assert.equal(app.pid, ready.pid);
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    assert.equal((await fetch(`${adminUrl}/metrics`)).status, 200);
  });

  it("rolls every worker on `pm2 sendSignal SIGHUP` under traffic, without restarting the primary or refusing a connection", async () => {
    const [before] = await pm2.list();
    const from = pm2.logs().length;
    const oldWorkers = pm2.logs().filter((l) => l.msg === "worker ready").map((l) => l.workerPid);
    const traffic = await Traffic.start(url, { clients: 20, freshEveryMs: 200, probeEveryMs: 200 });
    await pm2.run(["sendSignal", "SIGHUP", "sockfleet"]);
    await pm2.waitForLog((l) => l.msg === "rolling restart complete", 60_000, from);
    const report = await traffic.stop(10_000);
    console.log(`      pm2 roll of 2 workers under traffic: ${JSON.stringify({ clients: report.clients, disconnects: report.disconnects, longestReconnectMs: report.longestReconnectMs, freshConnects: report.freshConnects, freshFailures: report.freshFailures.length, probeFailures: report.probeFailures.length })}`);
    assert.deepEqual(report.freshFailures, []);
    assert.deepEqual(report.connectErrors, []);
    assert.deepEqual(report.probeFailures, []);
    assert.equal(report.stillDisconnected, 0);
    const [after] = await pm2.list();
    assert.equal(after.pid, before.pid, "the primary kept running");
    assert.equal(after.restarts, before.restarts);
    assert.equal(after.status, "online");
    const newWorkers = pm2.logs().slice(from).filter((l) => l.msg === "worker ready").map((l) => l.workerPid);
    assert.equal(newWorkers.length, 2);
    assert.deepEqual(newWorkers.filter((pid) => oldWorkers.includes(pid)), []);
  });

  it("drains the host on `pm2 sendSignal SIGUSR2`: /readyz turns 503 and the primary stays online, without clients", async () => {
    const [before] = await pm2.list();
    const from = pm2.logs().length;
    await pm2.run(["sendSignal", "SIGUSR2", "sockfleet"]);
    await pm2.waitForLog((l) => l.msg === "host drained: it serves no clients and stays not ready until stopped", 15_000, from);
    const readyz = await fetch(`${adminUrl}/readyz`);
    assert.equal(readyz.status, 503);
    assert.deepEqual(await readyz.json(), { status: "drained" });
    const [after] = await pm2.list();
    assert.equal(after.pid, before.pid);
    assert.equal(after.status, "online");
  });

  it("stops gracefully on `pm2 stop`: the primary exits 0 and takes its workers with it", async () => {
    const [app] = await pm2.list();
    const workers = pm2.alive().filter((pid) => pid !== app.pid && pid !== pm2.daemonPid());
    assert.equal(workers.length, 2);
    const from = pm2.logs().length;
    await pm2.run(["stop", "sockfleet"]);
    const stopped = await pm2.waitForLog((l) => l.msg === "stopped", 15_000, from);
    assert.equal(stopped.code, 0);
    await waitUntil("the primary and its workers to exit", () => [app.pid, ...workers].every((pid) => !pm2.alive().includes(pid)), 15_000);
    assert.equal((await pm2.list())[0].status, "stopped");
  });
});
