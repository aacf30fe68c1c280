import assert from "node:assert/strict";
import { HeardLog } from "../src/tiers/redis/heard-log";
import { PositionLog } from "../src/tiers/redis/position-log";
import { HostRetention, RETAIN_MAX, RETAIN_MS } from "../src/tiers/redis/host-retention";
import { roomGap, RoomNumbers } from "../src/tiers/redis/room-numbers";
import { maySocketId } from "../src/tiers/redis/socket-id-rooms";
import { Server } from "socket.io";
import type { AddressInfo } from "node:net";
import { closeClients, connect, type Client } from "./helpers/clients";

const SECOND = 1_000_000_000n;

describe("what a host heard of each other host, and when (heard-log)", () => {
  it("answers the newest number heard at or before a time, 0 before the first", () => {
    const log = new HeardLog();
    log.heard("b1", 3, 10n * SECOND);
    log.heard("b1", 7, 11n * SECOND);
    log.heard("b1", 9, 12n * SECOND);
    assert.equal(log.at("b1", 9n * SECOND), 0);
    assert.equal(log.at("b1", 10n * SECOND), 3);
    assert.equal(log.at("b1", 11n * SECOND + 5n), 7);
    assert.equal(log.at("b1", 20n * SECOND), 9);
    assert.equal(log.at("other", 20n * SECOND), 0);
  });

  it("ignores numbers not above the newest (a room broadcast heard after a newer heartbeat)", () => {
    const log = new HeardLog();
    log.heard("b1", 5, 10n * SECOND);
    log.heard("b1", 4, 11n * SECOND);
    assert.equal(log.at("b1", 11n * SECOND), 5);
  });

  it("forgets what is over 5 s old but still answers for those times with the newest such number", () => {
    const log = new HeardLog();
    for (let i = 1; i <= 10; i++) log.heard("b1", i, BigInt(i) * SECOND);
    // At 10 s, entries up to 5 s are older than 5 s: 5 is kept to answer for them, 1-4 are gone.
    assert.equal(log.at("b1", 5n * SECOND), 5);
    assert.equal(log.at("b1", 4n * SECOND), 0, "an older time answers 0: everything kept is sent, none missed");
    assert.equal(log.at("b1", 8n * SECOND), 8);
  });
});

describe("where this host's shared-log reader stood, and when (position-log)", () => {
  const MS = 1_000_000n;

  it("answers the id reached at or before a time, the oldest kept for an older time, nothing before the first", () => {
    const log = new PositionLog();
    assert.equal(log.at(5n * SECOND), undefined);
    log.reached("100-0", 10n * SECOND);
    log.reached("200-0", 11n * SECOND);
    assert.equal(log.at(9n * SECOND), "100-0");
    assert.equal(log.at(11n * SECOND - 1n), "100-0");
    assert.equal(log.at(11n * SECOND), "200-0");
  });

  it("samples at most one id per millisecond, so a time within it answers the older, safe id", () => {
    const log = new PositionLog();
    log.reached("100-0", 10n * SECOND);
    log.reached("100-5", 10n * SECOND + MS / 2n);
    log.reached("101-0", 10n * SECOND + MS);
    assert.equal(log.at(10n * SECOND + MS - 1n), "100-0");
    assert.equal(log.at(10n * SECOND + MS), "101-0");
  });

  it("forgets what is over 10 s old and answers older times with the oldest id kept", () => {
    const log = new PositionLog();
    log.reached("1-0", 1n * SECOND);
    log.reached("2-0", 2n * SECOND);
    log.reached("30-0", 30n * SECOND);
    assert.equal(log.at(1n * SECOND), "2-0");
  });
});

describe("room broadcasts a host keeps for other hosts' catch-ups (host-retention)", () => {
  const payload = (n: number): Buffer => Buffer.from(`p${n}`);

  it("answers with the broadcasts of the asked rooms numbered after `since`, oldest first", () => {
    const kept = new HostRetention(Number.POSITIVE_INFINITY);
    const now = Date.now();
    kept.keep(1, "/\0a", payload(1), now);
    kept.keep(2, "/\0b", payload(2), now);
    kept.keep(4, "/\0a", payload(4), now);
    kept.keep(6, "/\0a", payload(6), now);
    assert.deepEqual(kept.since(1, new Set(["/\0a"])).map(String), ["p4", "p6"]);
    assert.deepEqual(kept.since(0, new Set(["/\0a", "/\0b"])).map(String), ["p1", "p2", "p4", "p6"]);
    assert.deepEqual(kept.since(6, new Set(["/\0a"])), []);
  });

  it("keeps at most RETAIN_MS of them, then RETAIN_MAX, then its byte bound, counting what went early", () => {
    const byTime = new HostRetention(Number.POSITIVE_INFINITY);
    byTime.keep(1, "k", payload(1), 0);
    byTime.keep(2, "k", payload(2), RETAIN_MS + 1);
    assert.equal(byTime.size(), 1);
    assert.equal(byTime.dropped, 0, "expired is not early");

    const byCount = new HostRetention(Number.POSITIVE_INFINITY);
    for (let i = 1; i <= RETAIN_MAX + 10; i++) byCount.keep(i, "k", payload(i), 1_000);
    assert.equal(byCount.size(), RETAIN_MAX);
    assert.equal(byCount.dropped, 10);

    const byBytes = new HostRetention(10);
    for (let i = 1; i <= 5; i++) byBytes.keep(i, "k", Buffer.alloc(4), 1_000);
    assert.equal(byBytes.size(), 2);
    assert.deepEqual(byBytes.since(0, new Set(["k"])).length, 2);
  });
});

describe("per-room numbering of room broadcasts across hosts (room-numbers)", () => {
  it("numbers each room's broadcasts from 1, apart from other rooms", () => {
    const numbers = new RoomNumbers();
    assert.deepEqual([numbers.next("a"), numbers.next("a"), numbers.next("b"), numbers.next("a")], [1, 2, 1, 3]);
  });

  it("takes a jump as a gap, the first number and a restart of the count as starting points", () => {
    const heard = new Map<string, number>();
    assert.equal(roomGap(heard, "host-b:1", 4), undefined, "first heard");
    assert.equal(roomGap(heard, "host-b:1", 5), undefined);
    assert.deepEqual(roomGap(heard, "host-b:1", 9), { origin: "host-b", bridge: "host-b:1", missed: 3, from: 6, to: 8 });
    assert.equal(roomGap(heard, "host-b:1", 1), undefined, "the publisher forgot the room and counts again");
    assert.equal(roomGap(heard, "host-b:1", 2), undefined);
    assert.equal(roomGap(heard, "host-c:1", 7), undefined, "each publisher apart");
  });
});

describe("which rooms may be a socket's own id room (socket-id-rooms)", () => {
  it("takes every id socket.io gives its sockets as one, over both transports", async () => {
    const io = new Server(0);
    const clients: Client[] = [];
    try {
      const ids: string[] = [];
      io.on("connection", (socket) => ids.push(socket.id));
      const url = `http://127.0.0.1:${(io.httpServer.address() as AddressInfo).port}`;
      for (let i = 0; i < 100; i++) clients.push(await connect(url, i % 2 === 0 ? {} : { transports: ["websocket"] }));
      assert.equal(ids.length, 100);
      for (const id of ids) assert.ok(maySocketId(id), `socket id ${id}`);
    } finally {
      closeClients(clients);
      await new Promise<void>((resolve) => io.close(() => resolve()));
    }
  });

  it("takes named rooms of another shape as named", () => {
    for (const room of ["lobby", "room-1", "a".repeat(19), "a".repeat(21), "user:12345678901234", "/chat#aBcDeFgHiJkLmNoPqRsT", "abcdefghij klmnopqrs", "ümlautsümlautsümlaut"]) {
      assert.equal(maySocketId(room), false, room);
    }
    assert.equal(maySocketId("aBcDeFgHiJkLmNoPq_-9"), true);
  });
});
