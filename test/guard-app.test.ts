import assert from "node:assert/strict";
import { Manager } from "socket.io-client";
import { closeClients, connect, request, whoami, type Client } from "./helpers/clients";
import { scrapeAdmin, total } from "./helpers/metrics";
import { SockfleetHost, sourceFixture } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

const APP = sourceFixture("guard-app.cjs");

async function hits(host: SockfleetHost, limit: string): Promise<number> {
  return total(await scrapeAdmin(host), "sockfleet_limit_hits_total", { limit });
}

describe("app handler exceptions, rooms and namespaces (app-errors, max-rooms-per-socket, max-namespaces-per-client)", function () {
  this.timeout(30_000);
  let host: SockfleetHost;
  const clients: Client[] = [];

  before(async () => {
    host = await SockfleetHost.start({ workers: 1, app: APP, args: ["--admin-port", "0", "--max-rooms-per-socket", "5", "--max-namespaces-per-client", "3"] });
  });
  afterEach(() => closeClients(clients.splice(0)));
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  it("logs and counts a handler that throws, sync or async, and keeps the socket and the worker up", async () => {
    const client = await connect(host.url);
    clients.push(client);
    const { pid } = await whoami(client);
    const before = await hits(host, "app-error");
    const from = host.logs.length;
    client.emit("throw sync");
    client.emit("throw async");
    await waitUntil("two app errors counted", async () => (await hits(host, "app-error")) === before + 2 || undefined, 5_000);
    const line = await host.waitForLog((l) => l.limit === "app-error", 5_000, from);
    assert.equal(line.event, "throw sync");
    assert.equal(line.socket, client.id);
    assert.match(JSON.stringify(line.err), /sync boom/);
    assert.equal(client.connected, true);
    assert.equal(await request(client, "echo", "alive"), "alive");
    assert.equal((await whoami(client)).pid, pid);
  });

  it("refuses a join past the room cap with an error the handler sees, and other sockets still join", async () => {
    const [a, b] = [await connect(host.url), await connect(host.url)];
    clients.push(a, b);
    const before = await hits(host, "max-rooms-per-socket");
    // The socket's own id room counts: 4 more make 5.
    assert.deepEqual(await request(a, "join", ["r1", "r2", "r3", "r4"]), { rooms: 5 });
    assert.deepEqual(await request(a, "join", "r1"), { rooms: 5 }, "a room it is already in is no join");
    const refused = await request<{ error?: string }>(a, "join", "r5");
    assert.match(refused.error ?? "", /room limit reached: a socket may be in at most 5 rooms/);
    assert.deepEqual(await request(b, "join", "r5"), { rooms: 2 });
    assert.equal(await hits(host, "max-rooms-per-socket"), before + 1);
  });

  it("refuses a connection to a namespace past the cap with connect_error, and frees the slot on disconnect", async () => {
    const before = await hits(host, "max-namespaces-per-client");
    const manager = new Manager(host.url, { forceNew: true, reconnection: false, autoConnect: false });
    const sockets = ["/", "/n1", "/n2"].map((nsp) => manager.socket(nsp));
    try {
      for (const s of sockets) s.connect();
      await waitUntil("three namespaces connected", () => sockets.every((s) => s.connected) || undefined, 5_000);
      const fourth = manager.socket("/n3").connect();
      const [err] = await nextEvent<[Error]>(fourth, "connect_error", 5_000);
      assert.equal(err.message, "namespace limit reached");
      assert.equal(await hits(host, "max-namespaces-per-client"), before + 1);
      sockets[2].disconnect();
      const fifth = manager.socket("/n4");
      fifth.connect();
      await nextEvent(fifth, "connect", 5_000);
      const other = await connect(`${host.url}/n9`);
      clients.push(other);
      assert.equal(await request(other, "echo", 1), 1);
    } finally {
      for (const s of sockets) s.disconnect();
      manager.engine?.close();
    }
  });
});

describe("the chat app's join past --max-rooms-per-socket", function () {
  this.timeout(30_000);

  it("acks { error } and the socket stays in its rooms", async () => {
    const host = await SockfleetHost.start({ workers: 1, args: ["--max-rooms-per-socket", "3"] });
    try {
      const client = await connect(host.url);
      assert.equal(await request(client, "join", "a"), true);
      assert.equal(await request(client, "join", "b"), true);
      assert.deepEqual(await request(client, "join", "c"), { error: "room limit reached: a socket may be in at most 3 rooms" });
      const got = nextEvent<[{ text: string }]>(client, "room message", 5_000);
      client.emit("room message", { room: "b", text: "still in b" });
      assert.equal((await got)[0].text, "still in b");
      closeClients([client]);
    } finally {
      assert.equal(await host.stop(), 0);
    }
  });
});

describe("app handler exceptions with --app-errors crash", function () {
  this.timeout(30_000);

  it("crashes the worker as before when the app opts back into crashing", async () => {
    const host = await SockfleetHost.start({ workers: 1, app: APP, args: ["--app-errors", "crash"] });
    try {
      const client = await connect(host.url);
      const { pid } = await whoami(client);
      client.emit("throw sync");
      await waitUntil("the worker to be replaced", () => host.workerPids().some((p) => p !== pid) || undefined, 15_000);
      closeClients([client]);
    } finally {
      await host.stop();
    }
  });
});
