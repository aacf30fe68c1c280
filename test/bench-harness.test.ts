/**
 * The benchmark harness's own pieces: the load-generator process over IPC, the latency histogram,
 * and the Redis tap's message counting.
 */
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { Histogram, mergeHistograms, quantile } from "../bench/lib/histogram.js";
import { planIdle, readIdleLimits } from "../bench/lib/idle-plan.js";
import { LoadGen } from "../bench/lib/loadgen-handle.js";
import { RedisTap, TAP_KINDS } from "../bench/lib/redis-tap.js";
import { attachChat } from "../bench/servers/chat.js";
import { rssSlope } from "../bench/scenarios/idle.js";

describe("bench latency histogram", () => {
  it("returns quantiles within the bucket width of the recorded values", () => {
    const h = new Histogram();
    for (let us = 1; us <= 10_000; us++) h.record(us);
    const data = h.toData();
    assert.ok(Math.abs(quantile(data, 0.5) - 5000) / 5000 < 0.04, `p50 ${quantile(data, 0.5)}`);
    assert.ok(Math.abs(quantile(data, 0.99) - 9900) / 9900 < 0.04, `p99 ${quantile(data, 0.99)}`);
    assert.equal(quantile(data, 1), 10_000);
  });

  it("merges by adding counts", () => {
    const a = new Histogram();
    const b = new Histogram();
    a.record(100);
    b.record(100_000);
    const m = mergeHistograms([a.toData(), b.toData()]);
    assert.equal(m.total, 2);
    assert.equal(m.max, 100_000);
  });
});

describe("bench idle ramp", () => {
  it("plans 6 workers and 6 generators for 100k clients at 20,000 open files", () => {
    const plan = planIdle(100_000, { openFiles: 20_000, ephemeralPorts: 28_232 }, 18_000);
    assert.deepEqual(plan, { workers: 6, generators: 6, perGenerator: 16_667 });
  });

  it("keeps each generator within its source address's ephemeral ports", () => {
    const plan = planIdle(100_000, { openFiles: 1_000_000, ephemeralPorts: 11_000 });
    assert.equal(plan.workers, 1);
    assert.equal(plan.generators, 10);
    assert.ok(plan.perGenerator <= 10_000);
  });

  it("reads the hard open-file limit and the port range of this box", () => {
    const limits = readIdleLimits();
    assert.ok(limits.openFiles >= 1024, `open files ${limits.openFiles}`);
    assert.ok(limits.ephemeralPorts > 1000, `ports ${limits.ephemeralPorts}`);
  });

  it("takes the RSS slope over the samples between the counts named only", () => {
    const samples = [
      { connections: 5_000, rss: 999e6 },
      { connections: 10_000, rss: 100e6 },
      { connections: 20_000, rss: 120e6 },
      { connections: 30_000, rss: 140e6 },
    ];
    assert.equal(rssSlope(samples, 10_000, 30_000), 2000);
    assert.ok(Number.isNaN(rssSlope(samples, 25_000, 40_000)));
  });
});

describe("bench load-generator process", function () {
  this.timeout(20_000);
  let httpServer: http.Server;
  let io: Server;
  let port: number;
  let gen: LoadGen;

  before(async () => {
    httpServer = http.createServer();
    io = new Server(httpServer, { serveClient: false });
    attachChat(io, { host: "test-host", worker: 0 });
    await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
    port = (httpServer.address() as AddressInfo).port;
    gen = new LoadGen(0, "127.0.0.2");
  });
  after(async () => {
    await gen.stop();
    await new Promise<void>((resolve) => io.close(() => resolve()));
  });

  it("opens clients from its source address and counts every broadcast delivery with a latency", async () => {
    const opened = await gen.request({ type: "open", group: "g", host: "127.0.0.1", port, count: 20, localAddress: "127.0.0.2", concurrency: 5, timeoutMs: 5000 });
    assert.equal(opened.ok, 20);
    const sent = await gen.request({ type: "send", group: "g", kind: "broadcast", rate: 100, durationMs: 200, senders: 2, payloadBytes: 8, prefix: "", roomCount: 1, roomOffset: 0 });
    assert.equal(sent.sent, 20);
    const deadline = Date.now() + 5000;
    let report = await gen.request({ type: "report", group: "g" });
    while (report.received < 400 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      report = await gen.request({ type: "report", group: "g" });
    }
    assert.equal(report.received, 400);
    assert.equal(report.latency.total, 400);
    assert.equal(report.unparsed, 0);
    await gen.request({ type: "close", group: "g" });
  });

  it("delivers room messages only to the room's members", async () => {
    await gen.request({ type: "open", group: "r", host: "127.0.0.1", port, count: 10, concurrency: 5, timeoutMs: 5000 });
    const joined = await gen.request({ type: "join", group: "r", prefix: "room-", roomCount: 5, indexBase: 0, concurrency: 5 });
    assert.equal(joined.ok, 10);
    await gen.request({ type: "send", group: "r", kind: "room", rate: 100, durationMs: 100, senders: 1, payloadBytes: 0, prefix: "room-", roomCount: 5, roomOffset: 0 });
    const deadline = Date.now() + 5000;
    let report = await gen.request({ type: "report", group: "r" });
    while (report.received < 20 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      report = await gen.request({ type: "report", group: "r" });
    }
    assert.equal(report.received, 20); // 10 messages x rooms of 2
    await gen.request({ type: "close", group: "r" });
  });

  it("plans full rooms from the clients of one landing and delivers planned messages to their members only", async () => {
    await gen.request({ type: "open", group: "p", host: "127.0.0.1", port, count: 12, concurrency: 5, timeoutMs: 5000 });
    const landings = await gen.request({ type: "identify", group: "p", concurrency: 5 });
    assert.deepEqual(Object.keys(landings), ["test-host/w0"]);
    assert.equal(landings["test-host/w0"]!.count, 12);
    const none = await gen.request({ type: "plan-rooms", group: "p", prefix: "x-", roomSize: 5, exclude: ["test-host/w0"], concurrency: 5 });
    assert.equal(none.rooms, 0);
    // 12 clients make 2 full rooms of 5; the 2 left over join nothing
    const plan = await gen.request({ type: "plan-rooms", group: "p", prefix: "p-", roomSize: 5, exclude: [], concurrency: 5 });
    assert.deepEqual(plan, { rooms: 2, members: 10, joinFailed: 0 });
    const sent = await gen.request({ type: "send", group: "p", kind: "planned", rate: 100, durationMs: 100, senders: 1, payloadBytes: 0, prefix: "", roomCount: 1, roomOffset: 0 });
    assert.equal(sent.sent, 10);
    const deadline = Date.now() + 5000;
    let report = await gen.request({ type: "report", group: "p" });
    while (report.received < 50 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      report = await gen.request({ type: "report", group: "p" });
    }
    await new Promise((r) => setTimeout(r, 200)); // a delivery to a client outside the rooms would arrive right behind
    report = await gen.request({ type: "report", group: "p" });
    assert.equal(report.received, 50); // 10 messages x rooms of 5, none to the 2 outside
    await gen.request({ type: "close", group: "p" });
  });
});

describe("bench redis tap", () => {
  it("counts message and pmessage pushes, also when split across chunks", async () => {
    const pushes = Buffer.from("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nx\r\n*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\ny\r\n");
    const upstream = net.createServer((s) => {
      // send the two pushes cut in the middle of the second marker
      s.write(pushes.subarray(0, 40));
      setTimeout(() => s.write(pushes.subarray(40)), 20);
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const tap = new RedisTap((upstream.address() as AddressInfo).port);
    await tap.listen();
    const client = net.connect(tap.port, "127.0.0.1");
    let got = 0;
    await new Promise<void>((resolve) =>
      client.on("data", (d: Buffer) => {
        got += d.length;
        if (got === pushes.length) resolve();
      }),
    );
    assert.equal(tap.delivered, 2);
    client.destroy();
    await tap.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it("counts stream entries of sockfleet's log and of the Redis Streams adapter, by kind", async () => {
    // an XREAD reply with one sockfleet entry (first field "b") and one streams-adapter entry ("uid")
    const reply = Buffer.from("*1\r\n*2\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\nb\r\n$2\r\nh1\r\n*2\r\n$3\r\n2-0\r\n*2\r\n$3\r\nuid\r\n$2\r\nu1\r\n");
    const upstream = net.createServer((s) => s.write(reply));
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const tap = new RedisTap((upstream.address() as AddressInfo).port);
    await tap.listen();
    const client = net.connect(tap.port, "127.0.0.1");
    let got = 0;
    await new Promise<void>((resolve) =>
      client.on("data", (d: Buffer) => {
        got += d.length;
        if (got === reply.length) resolve();
      }),
    );
    assert.equal(tap.delivered, 2);
    assert.deepEqual(Object.fromEntries(TAP_KINDS.map((k, i) => [k, tap.byKind[i]])), {
      message: 0, pmessage: 0, smessage: 0, "stream entry (b)": 1, "stream entry (uid)": 1,
    });
    client.destroy();
    await tap.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });
});
