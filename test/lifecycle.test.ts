import assert from "node:assert/strict";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { scrapeAdmin, total } from "./helpers/metrics";
import { isAlive, killTree, waitForExit } from "./helpers/processes";
import { SockfleetHost, sourceFixture } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

describe("process lifecycle", function () {
  this.timeout(60_000);
  let clients: Client[] = [];
  afterEach(() => {
    closeClients(clients);
    clients = [];
  });

  it("logs one structured ready line with the port and worker count, and /readyz turns 200", async () => {
    const host = await SockfleetHost.start({ workers: 2 });
    try {
      const ready = host.logs.filter((l) => l.msg === "ready");
      assert.equal(ready.length, 1);
      assert.equal(ready[0].workers, 2);
      assert.equal(ready[0].port, host.port);
      assert.equal(ready[0].role, "primary");
      assert.equal((await host.fetch("/readyz")).status, 200);
      assert.equal((await host.fetch("/healthz")).status, 200);
    } finally {
      await host.stop();
    }
  });

  it("exits 0 on SIGTERM, tells clients to reconnect and leaves no process behind", async () => {
    const host = await SockfleetHost.start({ workers: 2 });
    const workers = host.workerPids();
    assert.equal(workers.length, 2);
    const client = await connect(host.url, { transports: ["websocket"] });
    clients.push(client);
    const disconnected = nextEvent<[string]>(client, "disconnect", 10_000).then(([reason]) => reason);
    assert.equal(await host.stop(), 0);
    // "transport close" makes socket.io-client reconnect by itself; "io server disconnect" would not.
    assert.equal(await disconnected, "transport close");
    for (const pid of [host.pid, ...workers]) assert.equal(isAlive(pid), false, `pid ${pid} still alive`);
  });

  it("exits 0 on SIGINT too", async () => {
    const host = await SockfleetHost.start({ workers: 1 });
    const workers = host.workerPids();
    host.child.kill("SIGINT");
    assert.equal((await waitForExit(host.child, 15_000)).code, 0);
    await waitUntil("the worker to exit", () => !workers.some(isAlive));
  });

  it("respawns a killed worker, and its clients reconnect to a live worker", async () => {
    const host = await SockfleetHost.start({ workers: 2 });
    try {
      const client = await connect(host.url, { transports: ["websocket"] });
      clients.push(client);
      const victim = (await whoami(client)).pid;
      const reconnected = nextEvent(client, "connect", 15_000);
      process.kill(victim, "SIGKILL");
      await reconnected;
      const now = (await whoami(client)).pid;
      assert.notEqual(now, victim);
      assert.ok(isAlive(now));
      await waitUntil("a replacement worker", () => host.workerPids().length === 2, 15_000);
      assert.ok(!host.workerPids().includes(victim));
      assert.equal((await host.fetch("/readyz")).status, 200);
      assert.ok(host.logs.some((l) => l.msg === "worker crashed" && l.signal === "SIGKILL"));
    } finally {
      await host.stop();
    }
  });

  it("survives a worker crashing from an uncaught exception in app code", async () => {
    const host = await SockfleetHost.start({ workers: 2, app: sourceFixture("throwing-app.cjs") });
    try {
      const client = await connect(host.url, { transports: ["websocket"] });
      clients.push(client);
      const victim = (await whoami(client)).pid;
      const reconnected = nextEvent(client, "connect", 15_000);
      client.emit("crash");
      await reconnected;
      assert.notEqual((await whoami(client)).pid, victim);
      assert.ok(isAlive(host.pid));
      assert.ok(host.logs.some((l) => l.msg === "uncaught exception, worker exits"));
    } finally {
      await host.stop();
    }
  });

  it("keeps respawning a worker that crash-loops after the host was ready, instead of stopping the host", async function () {
    // Eleven crashes reach the crash-loop threshold after about 53 s of real backoff (100 ms doubling to 10 s).
    this.timeout(150_000);
    const host = await SockfleetHost.start({ workers: 1, app: sourceFixture("throwing-app.cjs"), args: ["--admin-port", "0"] });
    try {
      const crashLines = (): number => host.logs.filter((l) => l.msg === "worker crashed" || l.msg === "crash loop: worker respawned at the longest backoff").length;
      for (let crash = 1; crash <= 11; crash++) {
        await waitUntil(`worker ${crash} serving`, () => host.logs.filter((l) => l.msg === "worker ready").length === crash, 20_000);
        const client = await connect(host.url, { transports: ["websocket"], reconnection: false });
        clients.push(client);
        client.emit("crash");
        await waitUntil(`crash ${crash} noticed`, () => crashLines() === crash, 10_000);
      }
      const loop = host.logs.find((l) => l.msg === "crash loop: worker respawned at the longest backoff");
      assert.ok(loop, "the crash loop is logged");
      assert.equal(loop.respawnInMs, 10_000);
      const samples = await scrapeAdmin(host);
      assert.equal(total(samples, "sockfleet_crash_looping_slots"), 1);
      // ...and the slot serves again after the longest backoff: the host never gave up.
      await waitUntil("the slot serving again", () => host.logs.filter((l) => l.msg === "worker ready").length === 12, 15_000);
      const client = await connect(host.url, { transports: ["websocket"] });
      clients.push(client);
      assert.ok((await whoami(client)).pid > 0);
      assert.equal(host.child.exitCode, null, "the primary still runs");
    } finally {
      await host.stop();
    }
  });

  it("makes workers exit by themselves when their primary is killed", async () => {
    const host = await SockfleetHost.start({ workers: 2 });
    const workers = host.workerPids();
    process.kill(host.pid, "SIGKILL");
    await waitForExit(host.child, 5_000);
    try {
      await waitUntil("orphaned workers to exit", () => !workers.some(isAlive), 10_000);
    } finally {
      await killTree(host.child);
    }
  });

  it("exits 1 with a clear message when the app module fails to start, without respawning it forever", async () => {
    const host = SockfleetHost.start({ workers: 2, app: sourceFixture("broken-app.cjs"), readyMs: 15_000 });
    await assert.rejects(host, /exited with 1/);
  });
});

describe("app modules", function () {
  this.timeout(30_000);
  let clients: Client[] = [];
  afterEach(() => {
    closeClients(clients);
    clients = [];
  });

  it("loads an ESM module's default export and hands it host, worker, pid and a logger", async () => {
    const host = await SockfleetHost.start({ workers: 2, app: sourceFixture("esm-app.mjs"), args: ["--host-id", "edge-1"] });
    try {
      const client = await connect(host.url);
      clients.push(client);
      const reply = await request<{ from: string; host: string; worker: number; pid: number; hasLogger: boolean }>(client, "hello");
      assert.equal(reply.from, "esm");
      assert.equal(reply.host, "edge-1");
      assert.ok(host.workerPids().includes(reply.pid));
      assert.equal(reply.hasLogger, true);
    } finally {
      await host.stop();
    }
  });

  it("loads a CommonJS module.exports function and awaits its async set-up", async () => {
    const host = await SockfleetHost.start({ workers: 1, app: sourceFixture("cjs-app.cjs") });
    try {
      const client = await connect(host.url);
      clients.push(client);
      assert.equal((await request<{ from: string }>(client, "hello")).from, "cjs");
    } finally {
      await host.stop();
    }
  });
});
