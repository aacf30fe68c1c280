import assert from "node:assert/strict";
import http from "node:http";
import { closeClients, connect, connectMany, whoami, type Client } from "./helpers/clients";
import { SockfleetHost } from "./helpers/sockfleet";

/** One HTTP request on its own TCP connection (no keep-alive), so only the balancer decides its worker. */
function rawRequest(port: number, method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent: false, headers: { connection: "close" }, timeout: 5_000 }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

function countBy<T>(items: T[]): Map<T, number> {
  const counts = new Map<T, number>();
  for (const item of items) counts.set(item, (counts.get(item) ?? 0) + 1);
  return counts;
}

describe("sticky sessions across 3 workers", function () {
  this.timeout(60_000);
  let host: SockfleetHost;
  let clients: Client[] = [];

  before(async () => {
    host = await SockfleetHost.start({ workers: 3 });
  });
  afterEach(() => {
    closeClients(clients);
    clients = [];
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  it("connects each of 200 WebSocket-only clients spaced 20 ms apart within 3 s", async () => {
    // With stock @socket.io/sticky about 1 in 100 of these loses its CONNECT packet in the primary and
    // hangs until the client's connect timeout; the balancer must hand every byte to the worker.
    const pending: Array<Promise<Client>> = [];
    for (let i = 0; i < 200; i++) {
      pending.push(connect(host.url, { transports: ["websocket"], reconnection: false }, 3_000));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const settled = await Promise.allSettled(pending);
    clients = settled.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const failures = settled.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason));
    assert.deepEqual(failures, []);
  });

  it("connects every one of 300 WebSocket-only clients opened at once", async () => {
    clients = await connectMany(host.url, 300, { transports: ["websocket"], reconnection: false });
    assert.equal(clients.filter((c) => c.connected).length, 300);
  });

  it("keeps a polling session on one worker over 50 round trips, then upgrades it on the same worker", async () => {
    const client = await connect(host.url, { transports: ["polling"], upgrade: false });
    clients.push(client);
    const first = await whoami(client);
    for (let i = 0; i < 50; i++) assert.equal((await whoami(client)).pid, first.pid);
    assert.equal(client.io.engine.transport.name, "polling");

    const upgrading = await connect(host.url); // polling first, then upgrade
    clients.push(upgrading);
    const before = await whoami(upgrading);
    for (let i = 0; i < 10; i++) assert.equal((await whoami(upgrading)).pid, before.pid);
    if (upgrading.io.engine.transport.name !== "websocket") {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no upgrade within 5 s")), 5_000);
        upgrading.io.engine.once("upgrade", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    assert.equal(upgrading.io.engine.transport.name, "websocket");
    assert.equal((await whoami(upgrading)).pid, before.pid);
    assert.equal(upgrading.id !== undefined && upgrading.connected, true);
  });

  it("routes every request of a polling session to its worker even when each opens a new TCP connection", async () => {
    const handshake = await rawRequest(host.port, "GET", "/socket.io/?EIO=4&transport=polling");
    assert.equal(handshake.status, 200);
    const sid = (JSON.parse(handshake.body.slice(1)) as { sid: string }).sid;
    const path = `/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    assert.equal((await rawRequest(host.port, "POST", path, "40")).status, 200);
    for (let i = 0; i < 20; i++) {
      // Each request is a fresh connection; a wrong worker answers 400 "Session ID unknown".
      const poll = await rawRequest(host.port, "POST", path, "3");
      assert.equal(poll.status, 200, poll.body);
    }
  });
});

describe("least-connection balancing of a connection burst", function () {
  this.timeout(60_000);
  let host: SockfleetHost;
  let clients: Client[] = [];

  // A fresh host per test: sessions closed by an earlier test would skew the counts for a moment.
  beforeEach(async () => {
    host = await SockfleetHost.start({ workers: 3 });
  });
  afterEach(async () => {
    closeClients(clients);
    clients = [];
    assert.equal(await host.stop(), 0);
  });

  it("spreads a burst of 30 polling-first connects evenly over all workers", async () => {
    clients = await connectMany(host.url, 30);
    const workers = countBy((await Promise.all(clients.map(whoami))).map((me) => me.pid));
    assert.equal(workers.size, 3, `all workers serve: ${JSON.stringify([...workers])}`);
    for (const [, count] of workers) assert.ok(count >= 8 && count <= 12, `uneven spread ${JSON.stringify([...workers])}`);
  });

  it("spreads a burst of 30 WebSocket-only connects evenly over all workers", async () => {
    clients = await connectMany(host.url, 30, { transports: ["websocket"] });
    const workers = countBy((await Promise.all(clients.map(whoami))).map((me) => me.pid));
    assert.equal(workers.size, 3);
    for (const [, count] of workers) assert.ok(count >= 8 && count <= 12, `uneven spread ${JSON.stringify([...workers])}`);
  });
});
