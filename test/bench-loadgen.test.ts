/**
 * The load generator's hand-written Socket.IO client, checked against the real socket.io-client on
 * the same in-process chat server.
 */
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { io as ioClient, type Socket as ClientSocket } from "socket.io-client";
import { SioWsClient } from "../bench/loadgen/client.js";
import { readIntAfter } from "../bench/loadgen/protocol.js";
import { attachChat } from "../bench/servers/chat.js";
import { waitUntil } from "./helpers/wait";

interface Running {
  port: number;
  io: Server;
  close: () => Promise<void>;
}

async function startChat(opts: { pingInterval?: number; pingTimeout?: number } = {}): Promise<Running> {
  const httpServer = http.createServer();
  const io = new Server(httpServer, { serveClient: false, ...opts });
  attachChat(io, { host: "test-host", worker: 7 });
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  const port = (httpServer.address() as AddressInfo).port;
  return {
    port,
    io,
    close: () =>
      new Promise<void>((resolve) => {
        io.close(() => resolve());
      }),
  };
}

function rawClient(port: number, onEvent?: (data: Buffer) => void): SioWsClient {
  return new SioWsClient({ host: "127.0.0.1", port, connectTimeoutMs: 3000, onEvent });
}

async function realClient(port: number): Promise<ClientSocket> {
  const socket = ioClient(`http://127.0.0.1:${port}`, { forceNew: true, reconnection: false, transports: ["websocket"] });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("connect_error", reject);
  });
  return socket;
}

function nextEvent(received: Buffer[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      const first = received.shift();
      if (first) {
        clearInterval(poll);
        resolve(first);
      } else if (Date.now() - started > 3000) {
        clearInterval(poll);
        reject(new Error("no event within 3 s"));
      }
    }, 5);
  });
}

describe("bench load generator client", () => {
  let server: Running;
  const opened: { close: () => void }[] = [];
  const sockets: ClientSocket[] = [];

  beforeEach(async () => {
    server = await startChat();
  });
  afterEach(async () => {
    for (const c of opened.splice(0)) c.close();
    for (const s of sockets.splice(0)) s.disconnect();
    await server.close();
  });

  it("connects to the main namespace and gets a socket.io sid the server knows", async () => {
    const c = rawClient(server.port);
    opened.push(c);
    await c.connected();
    assert.equal(c.state, "connected");
    assert.ok(server.io.of("/").sockets.has(c.sid), "server has the sid");
  });

  it("receives a socket.io-client broadcast with the same bytes decoded as the real client sees", async () => {
    const got: Buffer[] = [];
    const raw = rawClient(server.port, (d) => got.push(d));
    opened.push(raw);
    await raw.connected();
    const sender = await realClient(server.port);
    sockets.push(sender);
    const payload = { t: 12345, text: "héllo \"quoted\"", list: [1, 2, { deep: null }] };
    const seenByReal = new Promise<unknown>((resolve) => sender.once("chat message", resolve));
    sender.emit("chat message", payload);
    const data = await nextEvent(got);
    assert.deepEqual(JSON.parse(data.toString().slice(2)), ["chat message", payload]);
    assert.deepEqual(await seenByReal, payload);
  });

  it("sends a broadcast that socket.io-client receives intact", async () => {
    const receiver = await realClient(server.port);
    sockets.push(receiver);
    const raw = rawClient(server.port);
    opened.push(raw);
    await raw.connected();
    const payload = { t: 42, p: "x".repeat(100) };
    const seen = new Promise<unknown>((resolve) => receiver.once("chat message", resolve));
    raw.emit("chat message", payload);
    assert.deepEqual(await seen, payload);
  });

  it("gets acks for whoami and join like socket.io-client does", async () => {
    const raw = rawClient(server.port);
    opened.push(raw);
    await raw.connected();
    const real = await realClient(server.port);
    sockets.push(real);
    const [rawWho] = await raw.emitWithAck("whoami", [], 2000);
    const realWho: unknown = await real.timeout(2000).emitWithAck("whoami");
    assert.deepEqual(rawWho, realWho);
    assert.deepEqual(await raw.emitWithAck("join", ["r1"], 2000), [true]);
  });

  it("receives room messages only for rooms it joined", async () => {
    const inRoom: Buffer[] = [];
    const outside: Buffer[] = [];
    const a = rawClient(server.port, (d) => inRoom.push(d));
    const b = rawClient(server.port, (d) => outside.push(d));
    opened.push(a, b);
    await Promise.all([a.connected(), b.connected()]);
    await a.emitWithAck("join", ["room-a"], 2000);
    const sender = await realClient(server.port);
    sockets.push(sender);
    sender.emit("room message", { room: "room-a", text: "1700|hi" });
    const data = await nextEvent(inRoom);
    assert.deepEqual(JSON.parse(data.toString().slice(2)), ["room message", { room: "room-a", text: "1700|hi" }]);
    // a broadcast afterwards reaches b first-in-line: nothing from the room came before it
    sender.emit("chat message", { t: 1 });
    const next = await nextEvent(outside);
    assert.match(next.toString(), /^42\["chat message"/);
  });

  it("reads the sender timestamp from a delivery without decoding it", () => {
    const data = Buffer.from('42["chat message",{"t":1234567890123,"p":"abc"}]');
    assert.equal(readIntAfter(data, Buffer.from('"t":')), 1234567890123);
    assert.equal(readIntAfter(data, Buffer.from('"missing":')), -1);
  });
});

describe("bench load generator client heartbeats", () => {
  it("answers pings so the server keeps it past the ping timeout", async () => {
    const server = await startChat({ pingInterval: 50, pingTimeout: 100 });
    const c = rawClient(server.port);
    try {
      await c.connected();
      let closed = false;
      let pongs = 0;
      const socket = server.io.of("/").sockets.get(c.sid);
      assert.ok(socket, "the server holds the client's socket");
      socket.on("disconnect", () => (closed = true));
      socket.conn.on("packet", (packet: { type: string }) => {
        if (packet.type === "pong") pongs++;
      });
      // Six ping rounds, each answered within the 100 ms ping timeout, or the server closes it.
      await waitUntil("six pongs", () => pongs >= 6 || closed, 5_000);
      assert.equal(closed, false);
      assert.equal(c.state, "connected");
    } finally {
      c.close();
      await server.close();
    }
  });
});
