import assert from "node:assert/strict";
import fs from "node:fs";
import type WebSocket from "ws";
import { closeClients, connect, whoami, type Client } from "./helpers/clients";
import { scrapeAdmin, total } from "./helpers/metrics";
import { engineWebSocket, outcome, rawConnect, type Outcome } from "./helpers/raw";
import { SockfleetHost } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

/** socket.io-client passes localAddress on to ws, but does not declare it. */
const from = (localAddress: string) => ({ transports: ["websocket"], reconnection: false, localAddress }) as Parameters<typeof connect>[1];

async function limitHits(host: SockfleetHost, limit: string): Promise<number> {
  return total(await scrapeAdmin(host), "sockfleet_limit_hits_total", { limit });
}

/** What a fresh TCP connection from `localAddress` gets for a polling handshake. */
async function rawAttempt(host: SockfleetHost, localAddress: string): Promise<Outcome> {
  const socket = await rawConnect(host.port, localAddress);
  const answer = outcome(socket);
  socket.on("error", () => undefined);
  if (!socket.destroyed) socket.write("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  try {
    return await answer;
  } finally {
    socket.destroy();
  }
}

async function refusedConnect(url: string, localAddress?: string): Promise<void> {
  await assert.rejects(connect(url, localAddress ? from(localAddress) : { transports: ["websocket"], reconnection: false }, 5_000), /connect to .* failed/);
}

describe("per-address connection limit (--max-connections-per-ip)", function () {
  this.timeout(40_000);
  let host: SockfleetHost;
  let clients: Client[] = [];

  before(async () => {
    host = await SockfleetHost.start({ workers: 2, args: ["--max-connections-per-ip", "20", "--admin-port", "0"] });
  });
  after(async () => {
    closeClients(clients);
    assert.equal(await host.stop(), 0);
  });

  it("refuses an address past its limit while another address still connects, and admits it again once some of its connections close", async () => {
    const mine: Client[] = [];
    for (let i = 0; i < 20; i++) mine.push(await connect(host.url, from("127.0.0.3")));
    clients.push(...mine);
    await refusedConnect(host.url, "127.0.0.3");
    assert.deepEqual(await rawAttempt(host, "127.0.0.3"), { closed: true }, "refused before its head: closed without an answer");
    const other = await connect(host.url, from("127.0.0.4"));
    clients.push(other);
    assert.ok((await whoami(other)).pid > 0);
    await waitUntil("the host to count 21 connections", async () => total(await scrapeAdmin(host), "sockfleet_connections") === 21);
    assert.ok((await limitHits(host, "max-connections-per-ip")) >= 2);

    // Closing in the workers releases the address's count (the workers' "released" messages).
    closeClients(mine.splice(0, 5));
    const again = await waitUntil("127.0.0.3 to be admitted again", async () => connect(host.url, from("127.0.0.3"), 2_000).catch(() => undefined), 10_000, 100);
    clients.push(again);
    for (const client of mine) assert.ok(client.connected);
    assert.ok((await whoami(mine[0])).pid > 0, "the address's remaining sessions still work");
  });
});

describe("host connection limit (--max-connections)", function () {
  this.timeout(40_000);
  let host: SockfleetHost;
  let clients: Client[] = [];

  before(async () => {
    host = await SockfleetHost.start({ workers: 2, args: ["--max-connections", "10", "--max-connections-per-ip", "0", "--admin-port", "0"] });
  });
  after(async () => {
    closeClients(clients);
    assert.equal(await host.stop(), 0);
  });

  it("logs the effective limit in the ready line", () => {
    assert.equal(host.logs.find((l) => l.msg === "ready")?.maxConnections, 10);
  });

  it("refuses the 11th connection while the 10 existing sessions keep exchanging messages, and admits one again after a close", async () => {
    for (let i = 0; i < 10; i++) clients.push(await connect(host.url, { transports: ["websocket"] }));
    await refusedConnect(host.url);
    assert.deepEqual(await rawAttempt(host, "127.0.0.9"), { closed: true }, "another address is refused too: the host is full");
    const received = nextEvent<[string]>(clients[9], "chat message", 5_000);
    clients[0].emit("chat message", "still here");
    assert.equal((await received)[0], "still here");
    assert.ok((await limitHits(host, "max-connections")) >= 2);

    closeClients(clients.splice(0, 1));
    clients.push(await waitUntil("a connection to be admitted again", async () => connect(host.url, { transports: ["websocket"], reconnection: false }, 2_000).catch(() => undefined), 10_000, 100));
  });
});

describe("default connection limit", function () {
  this.timeout(30_000);

  it("derives --max-connections from the open-file limit: workers x (limit - 64)", async () => {
    const limit = Number(/^Max open files\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"))![1]);
    const host = await SockfleetHost.start({ workers: 2 });
    try {
      assert.equal(host.logs.find((l) => l.msg === "ready")?.maxConnections, 2 * (limit - 64));
      assert.equal(host.logs.find((l) => l.msg === "connection limits")?.openFileLimit, limit);
    } finally {
      assert.equal(await host.stop(), 0);
    }
  });
});

describe("open-file limit", function () {
  this.timeout(30_000);

  it("runs the primary and every worker at the hard open-file limit when started with a lower soft one, and exports the capacity that follows", async () => {
    const hard = Number(/^Max open files\s+\d+\s+(\d+)/m.exec(fs.readFileSync("/proc/self/limits", "utf8"))![1]);
    const host = await SockfleetHost.start({ workers: 2, launcher: ["prlimit", `--nofile=1000:${hard}`], args: ["--admin-port", "0"] });
    try {
      assert.equal(host.logs.find((l) => l.msg === "connection limits")?.openFileLimit, hard);
      const soft = (pid: number): number => Number(/^Max open files\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, "utf8"))![1]);
      const workers = await waitUntil("both workers ready", () => (host.workerPids().length === 2 ? host.workerPids() : undefined), 10_000);
      assert.deepEqual([host.pid, ...workers].map(soft), [hard, hard, hard]);
      assert.equal(total(await scrapeAdmin(host), "sockfleet_connection_capacity"), 2 * (hard - 64));
    } finally {
      assert.equal(await host.stop(), 0);
    }
  });

  it("warns when --max-connections is above workers x the open-file limit", async () => {
    const host = await SockfleetHost.start({ workers: 1, launcher: ["prlimit", "--nofile=500:500"], args: ["--max-connections", "1000"] });
    try {
      const warning = host.logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("max-connections is off or above what the open-file limit"));
      assert.equal(warning?.capacity, 500 - 64);
    } finally {
      assert.equal(await host.stop(), 0);
    }
  });
});

describe("client address from X-Forwarded-For (--trusted-proxies)", function () {
  this.timeout(40_000);
  let host: SockfleetHost;
  const open: WebSocket[] = [];

  before(async () => {
    // Dual-stack listener: peers appear as ::ffff:127.0.0.x and must still match 127.0.0.5/32.
    host = await SockfleetHost.start({ workers: 2, args: ["--host", "::", "--trusted-proxies", "127.0.0.5/32", "--max-connections-per-ip", "2", "--admin-port", "0"] });
  });
  afterEach(() => {
    for (const ws of open.splice(0)) ws.terminate();
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  async function attempt(localAddress: string, forwardedFor: string): Promise<"open" | Outcome> {
    const result = await engineWebSocket(host.port, localAddress, { "X-Forwarded-For": forwardedFor });
    if ("ws" in result) {
      open.push(result.ws);
      return "open";
    }
    return result;
  }

  it("counts a trusted proxy's connections against the right-most untrusted X-Forwarded-For entry, answering 503 past the limit", async () => {
    assert.equal(await attempt("127.0.0.5", "203.0.113.7"), "open");
    assert.equal(await attempt("127.0.0.5", "203.0.113.7"), "open");
    assert.deepEqual(await attempt("127.0.0.5", "203.0.113.7"), { status: 503 });
    // A client cannot escape by prepending addresses of its own: the proxy's entry is the right-most.
    assert.deepEqual(await attempt("127.0.0.5", "198.51.100.1, 203.0.113.7"), { status: 503 });
    assert.equal(await attempt("127.0.0.5", "203.0.113.8"), "open", "another client behind the same proxy");
    assert.equal(await attempt("127.0.0.5", "203.0.113.8"), "open");
    assert.ok((await limitHits(host, "max-connections-per-ip")) >= 2);
  });

  it("ignores X-Forwarded-For from an untrusted peer and counts the peer's own address", async () => {
    assert.equal(await attempt("127.0.0.6", "203.0.113.9"), "open");
    assert.equal(await attempt("127.0.0.6", "203.0.113.10"), "open");
    assert.deepEqual(await attempt("127.0.0.6", "203.0.113.11"), { closed: true });
  });
});
