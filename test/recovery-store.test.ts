import assert from "node:assert/strict";
import { FROM_SESSION_START } from "../src/tiers/recovery/offsets";
import { RecoveryStore } from "../src/tiers/recovery/store";

const limits = { windowMs: 60_000, maxPackets: 1000, maxBytes: 10_000_000, maxSessions: 1000 };
const live = (): boolean => false;

function storeWithSession(over: Partial<typeof limits> = {}): RecoveryStore {
  const store = new RecoveryStore({ ...limits, ...over });
  store.joined(1, "/", "sid-1", ["sid-1"], "pid-1", { user: "ann" });
  store.joined(1, "/", "sid-1", ["blue"]);
  return store;
}

describe("the recovery store", () => {
  it("returns, in order, every broadcast after the client's offset that was meant for it", () => {
    const store = storeWithSession();
    const seen = store.append({ nsp: "/", rooms: [], except: [], data: ["e", 0] });
    store.append({ nsp: "/", rooms: [], except: [], data: ["e", 1] });
    store.append({ nsp: "/", rooms: ["blue"], except: [], data: ["e", 2] });
    store.append({ nsp: "/", rooms: ["red"], except: [], data: ["e", 3] });
    store.append({ nsp: "/", rooms: [], except: ["blue"], data: ["e", 4] });
    store.append({ nsp: "/other", rooms: [], except: [], data: ["e", 5] });
    store.append({ nsp: "/", rooms: ["sid-1"], except: [], data: ["e", 6] });
    store.workerGone(1);
    const session = store.restore(2, "/", "pid-1", seen, live);
    assert.ok(session);
    assert.equal(session.sid, "sid-1");
    assert.deepEqual(session.rooms.sort(), ["blue", "sid-1"]);
    assert.deepEqual(session.data, { user: "ann" });
    assert.deepEqual(session.missedPackets.map((p) => p[1]), [1, 2, 6]);
    assert.ok(session.missedPackets.every((p) => typeof p[2] === "string"));
  });

  describe("restoring a client that brought no offset (it received no broadcast)", () => {
    it("replays every broadcast meant for it since its session began, and nothing from before", () => {
      const store = new RecoveryStore(limits);
      store.append({ nsp: "/", rooms: [], except: [], data: ["e", 0] });
      store.joined(1, "/", "sid-1", ["sid-1"], "pid-1", {}, true);
      store.append({ nsp: "/", rooms: [], except: [], data: ["e", 1] });
      store.append({ nsp: "/", rooms: ["red"], except: [], data: ["e", 2] });
      store.workerGone(1);
      assert.deepEqual(store.restore(2, "/", "pid-1", FROM_SESSION_START, live)?.missedPackets.map((p) => p[1]), [1]);
    });

    it("replays from its session's start when the offset it brings is older (kept from a session it lost)", () => {
      const store = new RecoveryStore(limits);
      const stale = store.append({ nsp: "/", rooms: [], except: [], data: ["e", 0] });
      store.append({ nsp: "/", rooms: [], except: [], data: ["e", 1] });
      store.joined(1, "/", "sid-1", ["sid-1"], "pid-1", {}, true);
      store.append({ nsp: "/", rooms: [], except: [], data: ["e", 2] });
      store.workerGone(1);
      assert.deepEqual(store.restore(2, "/", "pid-1", stale, live)?.missedPackets.map((p) => p[1]), [2]);
    });

    it("gives a fresh session to a client that gets no offsets: without one it cannot tell what it has", () => {
      const store = new RecoveryStore(limits);
      store.joined(1, "/", "sid-1", ["sid-1"], "pid-1", {}, false);
      store.append({ nsp: "/", rooms: [], except: [], data: ["e", 1] });
      store.workerGone(1);
      assert.equal(store.restore(2, "/", "pid-1", FROM_SESSION_START, live), null);
    });

    it("shares where the session began in the shared log, so another host can replay from there", () => {
      const store = new RecoveryStore(limits);
      store.followStream("7-0");
      store.append({ nsp: "/", rooms: [], except: [], data: ["e", 1] }, 0, { streamId: "7-1" });
      store.joined(1, "/", "sid-1", ["sid-1"], "pid-1", {}, true);
      store.joined(1, "/", "sid-2", ["sid-2"], "pid-2", {}, false);
      assert.equal(store.share("pid-1")?.start, "7-1");
      assert.equal(store.share("pid-2")?.start, undefined);
    });
  });

  it("restores a session once: a second restore of the same pid while it is held gets nothing", () => {
    const store = storeWithSession();
    const offset = store.append({ nsp: "/", rooms: [], except: [], data: ["e"] });
    store.workerGone(1);
    assert.ok(store.restore(2, "/", "pid-1", offset, live));
    assert.equal(store.restore(3, "/", "pid-1", offset, (w) => w === 2), null);
  });

  it("refuses a session whose worker is still alive and holds it", () => {
    const store = storeWithSession();
    const offset = store.append({ nsp: "/", rooms: [], except: [], data: ["e"] });
    assert.equal(store.restore(2, "/", "pid-1", offset, (w) => w === 1), null);
  });

  it("gives a fresh session instead of a gap when the offset has left the log", () => {
    const store = storeWithSession({ maxPackets: 100 });
    const old = store.append({ nsp: "/", rooms: [], except: [], data: ["e", 0] });
    for (let i = 1; i <= 150; i++) store.append({ nsp: "/", rooms: [], except: [], data: ["e", i] });
    store.workerGone(1);
    assert.equal(store.restore(2, "/", "pid-1", old, live), null);
    assert.equal(store.stats().expired, 1);
  });

  it("bounds the log by bytes", () => {
    const store = new RecoveryStore({ ...limits, maxBytes: 1_000_000 });
    for (let i = 0; i < 100; i++) store.append({ nsp: "/", rooms: [], except: [], data: ["e", "x".repeat(100_000)] });
    assert.ok(store.stats().bytes <= 1_000_000);
    assert.ok(store.stats().packets < 11);
  });

  it("forgets disconnected sessions after the recovery window", () => {
    const store = storeWithSession({ windowMs: 1000 });
    const offset = store.append({ nsp: "/", rooms: [], except: [], data: ["e"] }, 0);
    store.persisted("/", "sid-1", "pid-1", ["sid-1"], null, 0);
    store.sweep(5_000);
    assert.equal(store.stats().sessions, 0);
    assert.equal(store.restore(2, "/", "pid-1", offset, live, 5_000), null);
  });

  it("forgets a socket that disconnected without a recoverable reason", () => {
    const store = storeWithSession();
    store.ended("/", "sid-1");
    assert.equal(store.stats().sessions, 0);
  });

  it("refuses an offset from another run of the primary", () => {
    const store = storeWithSession();
    store.append({ nsp: "/", rooms: [], except: [], data: ["e"] });
    store.workerGone(1);
    assert.equal(store.restore(2, "/", "pid-1", "deadbeef-1", live), null);
  });

  describe("following the fleet's shared log", () => {
    const shared = { nsp: "/", sid: "sid-9", pid: "pid-9", rooms: ["sid-9", "blue"], data: { user: "bo" }, connected: false };
    const entry = (n: number, rooms: string[] = []) => ({ nsp: "/", rooms, except: [], data: ["e", n] });

    it("hands out stream ids as offsets, and replays to a client from another host every entry after its stream id", () => {
      const store = new RecoveryStore(limits);
      store.followStream("100-0");
      for (let n = 1; n <= 4; n++) assert.equal(store.append(entry(n, n === 3 ? ["red"] : []), 0, { streamId: `100-${n}` }), `100-${n}`);
      const session = store.adopt(2, shared, "100-1", 0);
      assert.ok(session);
      assert.equal(session.sid, "sid-9");
      assert.deepEqual(session.missedPackets, [["e", 2, "100-2"], ["e", 4, "100-4"]]);
    });

    it("refuses a client from another host whose stream id is older than what this host has followed", () => {
      const store = new RecoveryStore(limits);
      store.followStream("100-5");
      store.append(entry(6), 0, { streamId: "100-6" });
      assert.equal(store.adopt(2, shared, "100-4", 0), null);
      assert.equal(store.adopt(2, shared, "deadbeef:1", 0), null, "a host-local offset means nothing elsewhere");
    });

    it("refuses a client from another host once entries after its stream id have been evicted", () => {
      const store = new RecoveryStore({ ...limits, maxPackets: 100 });
      store.followStream("1-0");
      for (let n = 1; n <= 150; n++) store.append(entry(n), 0, { streamId: `1-${n}` });
      assert.equal(store.adopt(2, shared, "1-10", 0), null);
      assert.ok(store.adopt(2, shared, "1-140", 0));
    });

    it("replays its own broadcasts delivered alone (while Redis was away) to local clients at their local place, and to clients from elsewhere at their stream place", () => {
      const store = storeWithSession();
      store.followStream("5-0");
      const before = store.append(entry(1), 0, { streamId: "5-1" });
      const alone = store.append(entry(2), 0, { localOffset: true }); // Redis down: delivered here only
      assert.match(alone, /:/);
      store.append(entry(3), 0, { streamId: "5-2", localOffset: true }); // read back, not yet in step
      store.append(entry(2), 0, { streamId: "5-3", copy: true }); // its own broadcast, come back
      store.append(entry(4), 0, { streamId: "5-4" });
      store.workerGone(1);
      const local = store.restore(2, "/", "pid-1", before, live, 0);
      assert.deepEqual(local?.missedPackets.map((p) => p[1]), [2, 3, 4]);
      const remote = store.adopt(3, shared, "5-1", 0);
      assert.deepEqual(remote?.missedPackets.map((p) => p[1]), [3, 2, 4]);
    });

    it("refuses a client from another host whose offset precedes a break in the shared log's order", () => {
      const store = new RecoveryStore(limits);
      store.followStream("1-0");
      for (let n = 1; n <= 3; n++) store.append(entry(n), 0, { streamId: `1-${n}` });
      // Redis restarted: an entry some hosts had read was appended again at 9-0.
      store.append(entry(3), 0, { streamId: "9-0", copy: true });
      store.orderBroke("9-0");
      store.append(entry(4), 0, { streamId: "9-1" });
      assert.equal(store.adopt(2, shared, "1-2", 0), null);
      assert.deepEqual(store.adopt(2, shared, "9-0", 0)?.missedPackets.map((p) => p[1]), [4]);
    });

    it("shares a session's state, and forgets one another host took over", () => {
      const changed: string[] = [];
      const store = new RecoveryStore(limits, (pid) => changed.push(pid));
      store.joined(1, "/", "sid-1", ["sid-1"], "pid-1", { user: "ann" });
      store.joined(1, "/", "sid-1", ["blue"]);
      assert.deepEqual(store.share("pid-1"), { nsp: "/", sid: "sid-1", pid: "pid-1", rooms: ["sid-1", "blue"], data: { user: "ann" }, connected: true });
      store.workerGone(1);
      assert.equal(store.share("pid-1")?.connected, false);
      store.taken("pid-1");
      assert.equal(store.share("pid-1"), undefined);
      assert.ok(changed.length >= 4 && changed.every((pid) => pid === "pid-1"));
    });
  });
});
