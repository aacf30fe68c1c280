import assert from "node:assert/strict";
import type net from "node:net";
import { closeClients, connect, type Client } from "./helpers/clients";
import { scrapeAdmin, total } from "./helpers/metrics";
import { closedAfter, openMany, outcome, POLLING_HANDSHAKE, rawConnect } from "./helpers/raw";
import { SockfleetHost } from "./helpers/sockfleet";
import { nextEvent, waitUntil } from "./helpers/wait";

const FLOOD = 2_000;
/** A chat message between two good clients must arrive within this, flood or not (generous: 2 shared cores). */
const LATENCY_BOUND_MS = 1_500;

async function limitHits(host: SockfleetHost, limit: string): Promise<number> {
  return total(await scrapeAdmin(host), "sockfleet_limit_hits_total", { limit });
}

/** Two good clients on 127.0.0.1 connect (polling first, then upgrade) and exchange `count` chat messages; the worst latency. */
async function chatRoundTrips(url: string, clients: Client[], count = 10): Promise<number> {
  const [alice, bob] = [await connect(url), await connect(url)];
  clients.push(alice, bob);
  let worst = 0;
  for (let n = 0; n < count; n++) {
    const received = nextEvent<[{ n: number; at: number }]>(bob, "chat message", 5_000);
    alice.emit("chat message", { n, at: Date.now() });
    const [message] = await received;
    assert.equal(message.n, n);
    worst = Math.max(worst, Date.now() - message.at);
  }
  return worst;
}

/** Half the flood sends nothing, the other half a request head that never ends. */
async function halfOpenFlood(port: number): Promise<net.Socket[]> {
  const silent = await openMany(port, "127.0.0.2", FLOOD / 2);
  const partial = await openMany(port, "127.0.0.2", FLOOD / 2, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  return [...silent, ...partial];
}

describe("request heads in the primary: bounded in time", function () {
  this.timeout(30_000);
  let host: SockfleetHost;
  const sockets: net.Socket[] = [];

  before(async () => {
    host = await SockfleetHost.start({ workers: 1, args: ["--head-timeout", "1500", "--admin-port", "0"] });
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.destroy();
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  it("closes a connection that trickles its head one byte every 300 ms within about the head timeout", async () => {
    const started = Date.now();
    const socket = await rawConnect(host.port, "127.0.0.2");
    sockets.push(socket);
    socket.write("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n");
    const trickle = setInterval(() => socket.write("X"), 300);
    try {
      const heldMs = await closedAfter(socket, started, 6_000);
      assert.ok(heldMs >= 1_300 && heldMs <= 3_500, `held ${heldMs} ms with --head-timeout 1500`);
    } finally {
      clearInterval(trickle);
    }
    assert.ok((await limitHits(host, "head-timeout")) >= 1);
  });

  it("closes a connection that sends nothing at all within about the head timeout", async () => {
    const started = Date.now();
    const socket = await rawConnect(host.port, "127.0.0.2");
    sockets.push(socket);
    const heldMs = await closedAfter(socket, started, 6_000);
    assert.ok(heldMs >= 1_300 && heldMs <= 3_500, `held ${heldMs} ms with --head-timeout 1500`);
  });

  it("still serves a head that arrives in pieces well within the timeout", async () => {
    const socket = await rawConnect(host.port, "127.0.0.2");
    sockets.push(socket);
    const answer = outcome(socket);
    for (const piece of POLLING_HANDSHAKE.match(/[\s\S]{1,10}/g)!) socket.write(piece);
    assert.deepEqual(await answer, { status: 200 });
  });
});

describe("request heads in the primary: bounded in bytes", function () {
  this.timeout(30_000);
  let host: SockfleetHost;
  const sockets: net.Socket[] = [];

  before(async () => {
    host = await SockfleetHost.start({ workers: 1, args: ["--max-head-bytes", "32768", "--admin-port", "0"] });
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.destroy();
  });
  after(async () => {
    assert.equal(await host.stop(), 0);
  });

  async function send(head: string): Promise<{ status: number } | { closed: true }> {
    const socket = await rawConnect(host.port, "127.0.0.2");
    sockets.push(socket);
    const answer = outcome(socket);
    socket.write(head);
    return answer;
  }
  const padded = (bytes: number): string => POLLING_HANDSHAKE.replace("\r\n\r\n", `\r\nX-Pad: ${"a".repeat(bytes)}\r\n\r\n`);

  it("answers 431 and closes a head still incomplete at --max-head-bytes", async () => {
    const socket = await rawConnect(host.port, "127.0.0.2");
    sockets.push(socket);
    const answer = outcome(socket);
    socket.write(padded(40_000).slice(0, 36_000));
    assert.deepEqual(await answer, { status: 431 });
    await closedAfter(socket, Date.now(), 3_000);
    assert.ok((await limitHits(host, "max-head-bytes")) >= 1);
  });

  it("answers 431 to a complete head larger than --max-head-bytes sent in one piece", async () => {
    assert.deepEqual(await send(padded(40_000)), { status: 431 });
  });

  it("serves a head under --max-head-bytes even above node's 16 KiB default (the worker applies the same bound)", async () => {
    assert.deepEqual(await send(padded(20_000)), { status: 200 });
  });
});

describe("2,000 half-open connections from one address", function () {
  this.timeout(60_000);
  let host: SockfleetHost | undefined;
  let clients: Client[] = [];
  let flood: net.Socket[] = [];

  afterEach(async () => {
    closeClients(clients);
    clients = [];
    for (const socket of flood) socket.destroy();
    flood = [];
    if (host) assert.equal(await host.stop(), 0);
    host = undefined;
  });

  it("drops the oldest waiting connections beyond --max-pending-heads, so a good client still chats with bounded latency", async () => {
    host = await SockfleetHost.start({ workers: 2, args: ["--max-pending-heads", "200", "--max-connections-per-ip", "0", "--head-timeout", "60000", "--admin-port", "0"] });
    flood = await halfOpenFlood(host.port);
    const h = host;
    await waitUntil("the oldest waiting connections to be dropped", async () => (await limitHits(h, "max-pending-heads")) >= FLOOD - 200);
    const pending = total(await scrapeAdmin(host), "sockfleet_pending_heads");
    assert.ok(pending <= 200, `${pending} connections waiting for a head`);
    const worst = await chatRoundTrips(host.url, clients);
    assert.ok(worst < LATENCY_BOUND_MS, `worst chat latency ${worst} ms`);
    assert.equal(await limitHits(host, "head-timeout"), 0, "no connection was dropped by its deadline: eviction let the good client in");
  });

  it("with the defaults, refuses the address past its 1,000 connections, and a good client still chats with bounded latency", async () => {
    host = await SockfleetHost.start({ workers: 2, args: ["--admin-port", "0"] });
    flood = await halfOpenFlood(host.port);
    const h = host;
    await waitUntil("the flood past 1,000 to be refused", async () => (await limitHits(h, "max-connections-per-ip")) >= FLOOD - 1_000);
    const samples = await scrapeAdmin(host);
    assert.ok(total(samples, "sockfleet_pending_heads") <= 1_000);
    assert.ok(total(samples, "sockfleet_connections") <= 1_000);
    const worst = await chatRoundTrips(host.url, clients);
    assert.ok(worst < LATENCY_BOUND_MS, `worst chat latency ${worst} ms`);
  });
});
