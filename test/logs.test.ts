import assert from "node:assert/strict";
import { closeClients, connect } from "./helpers/clients";
import { SockfleetHost } from "./helpers/sockfleet";

describe("structured logs", function () {
  this.timeout(60_000);

  it("binds role, host and pid to every primary line, and role, host, worker and pid to every worker line", async () => {
    const host = await SockfleetHost.start({ workers: 2, args: ["--host-id", "edge-7", "--log-level", "debug"], env: { LOG_LEVEL: "" } });
    try {
      const client = await connect(host.url, { transports: ["websocket"] });
      closeClients([client]);
      process.kill(host.pid, "SIGHUP");
      await host.waitForLog((l) => l.msg === "rolling restart complete", 30_000);
    } finally {
      await host.stop();
    }
    const primary = host.logs.filter((l) => l.role === "primary");
    const workers = host.logs.filter((l) => l.role === "worker");
    assert.ok(primary.length > 0 && workers.length > 0);
    assert.deepEqual(host.logs.filter((l) => l.role !== "primary" && l.role !== "worker"), [], "every line has a role");
    for (const line of primary) {
      assert.equal(line.host, "edge-7");
      assert.equal(line.pid, host.pid);
      assert.equal(typeof line.time, "string");
    }
    for (const line of workers) {
      assert.equal(line.host, "edge-7");
      assert.equal(typeof line.worker, "number");
      assert.equal(typeof line.pid, "number");
      assert.notEqual(line.pid, host.pid);
    }
    // A worker's lines during a roll name the worker that drains.
    assert.ok(workers.some((l) => l.msg === "draining: clients are told to reconnect, a few at a time" && typeof l.spreadMs === "number"));
  });

  it("writes debug lines only when the log level asks for them", async () => {
    const quiet = await SockfleetHost.start({ workers: 1 });
    await quiet.stop();
    assert.deepEqual(quiet.logs.filter((l) => (l.level ?? 30) < 30), []);
    const chatty = await SockfleetHost.start({ workers: 1, args: ["--log-level", "debug"], env: { LOG_LEVEL: "" } });
    await chatty.stop();
    assert.ok(chatty.logs.some((l) => l.level === 20 && l.msg === "worker forked"));
  });
});
